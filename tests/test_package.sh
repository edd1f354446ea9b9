#!/usr/bin/env bash
# Builds the Debian package from the build tree (cpack -G DEB, into a
# temporary folder) and checks it: control fields, Depends derived from the
# binaries, the files it installs, the desktop file and AppStream metainfo
# (desktop-file-validate, appstreamcli validate), the copyright file (DEP-5,
# its MIT text the LICENSE file's), and that the installed programs find
# every library they need and run.
#
# usage: test_package.sh BUILD_DIR SOURCE_DIR WITH_GUI(0|1) WITH_CUDA(0|1) [CUDA_LIBRARY_DIR]
# Exit 0 pass, 1 fail, 77 skipped (a tool is missing).
set -uo pipefail

build=$1 source=$2 gui=$3 cuda=$4 cudalib=${5:-}
id=io.github.relora_workbench.ReLoRAWorkbench

for tool in cpack dpkg-deb dpkg-query desktop-file-validate appstreamcli readelf ldd; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (packaging/install-deps.sh)"; exit 77; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }

# ---- build the package ------------------------------------------------------------
start=$SECONDS
if ! cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log"
  echo "FAIL: cpack -G DEB failed"
  exit 1
fi
debs=("$tmp"/out/*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || { cat "$tmp/cpack.log"; echo "FAIL: expected one .deb, got ${debs[*]}"; exit 1; }
deb=${debs[0]}
pass "cpack built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $((SECONDS - start)) s"

# ---- control fields -----------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
echo "---- control"
dpkg-deb -f "$deb"
echo "----"
[ "$(field Package)" = relora-workbench ] && pass "Package: relora-workbench" || fail "Package is '$(field Package)'"
[ "$(field Section)" = science ] && pass "Section: science" || fail "Section is '$(field Section)'"
[ -n "$(field Maintainer)" ] && pass "Maintainer set" || fail "no Maintainer"
[ -n "$(field Version)" ] && pass "Version $(field Version)" || fail "no Version"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] && pass "Architecture $(field Architecture)" \
  || fail "Architecture is '$(field Architecture)'"
depends=$(field Depends)
expected=(libsqlite3-0 libhdf5 libopenblas liblapacke libgomp1 libstdc++6 libc6)
[ "$gui" = 1 ] && expected+=(libqt6widgets6 libqt6charts6 libqt6svg6)
for lib in "${expected[@]}"; do
  [[ $depends == *"$lib"* ]] && pass "Depends mentions $lib" || fail "Depends lacks $lib: $depends"
done
if [[ ${depends,,} == *cuda* || ${depends,,} == *cublas* || ${depends,,} == *cusolver* || ${depends,,} == *nvidia* ]]; then
  fail "Depends names CUDA libraries, which no Debian package provides: $depends"
else
  pass "Depends names no CUDA library"
fi
# Every dependency is a real package (those found on this machine by dpkg-shlibdeps).
IFS=',' read -ra items <<<"$depends"
for item in "${items[@]}"; do
  alternatives=${item//|/ }
  found=0
  for alt in $alternatives; do
    [[ $alt == \(* || $alt == *\) || $alt == [\<\>=]* ]] && continue
    dpkg-query -W "$alt" >/dev/null 2>&1 && found=1
  done
  [ $found = 1 ] || fail "dependency '$item' is no package known to dpkg here"
done
pass "${#items[@]} dependencies checked against dpkg"
[[ $(field Recommends) == *fortunes* ]] && pass "Recommends the default corpus (fortunes)" \
  || fail "Recommends lacks fortunes: $(field Recommends)"

# ---- contents -------------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $NF}' >"$tmp/contents"
has() { grep -qx "./$1" "$tmp/contents"; }
has usr/bin/relora && pass "usr/bin/relora" || fail "no usr/bin/relora"
copyright=usr/share/doc/relora-workbench/copyright
has "$copyright" && pass "$copyright" || fail "no $copyright"
desktop=usr/share/applications/$id.desktop
icon=usr/share/icons/hicolor/scalable/apps/$id.svg
metainfo=usr/share/metainfo/$id.metainfo.xml
if [ "$gui" = 1 ]; then
  for f in usr/bin/relora-workbench "$desktop" "$icon" "$metainfo"; do
    has "$f" && pass "$f" || fail "no $f"
  done
else
  for f in usr/bin/relora-workbench "$desktop" "$metainfo"; do
    has "$f" && fail "$f installed without the GUI"
  done
  pass "no GUI: no menu entry (built without the GUI target)"
fi
if grep -q '^\./usr/local\|^\./opt\|^\./home\|^\./tmp' "$tmp/contents"; then
  fail "files outside /usr: $(grep '^\./usr/local\|^\./opt\|^\./home\|^\./tmp' "$tmp/contents")"
fi

# ---- installed files ---------------------------------------------------------------------
dpkg-deb -x "$deb" "$tmp/root"
root=$tmp/root
if [ "$gui" = 1 ]; then
  d=$root/$desktop m=$root/$metainfo i=$root/$icon
else  # nothing installed: still check the sources
  d=$source/packaging/$id.desktop m=$source/packaging/$id.metainfo.xml
  i=$source/packaging/icons/hicolor/scalable/apps/$id.svg
fi
out=$(desktop-file-validate "$d" 2>&1) && pass "desktop-file-validate $(basename "$d")" \
  || fail "desktop-file-validate: $out"
grep -q '^Exec=relora-workbench$' "$d" && grep -q "^Icon=$id$" "$d" && pass "desktop file: Exec and Icon" \
  || fail "desktop file: Exec/Icon lines"
out=$(appstreamcli validate --no-net "$m" 2>&1) && pass "appstreamcli validate $(basename "$m")" \
  || fail "appstreamcli validate: $out"
grep -q "<launchable type=\"desktop-id\">$id.desktop</launchable>" "$m" && pass "metainfo launches $id.desktop" \
  || fail "metainfo does not name $id.desktop"
grep -q '<svg' "$i" && pass "icon is SVG" || fail "icon $i is not SVG"
grep -q '<project_license>MIT</project_license>' "$m" && pass "metainfo: project_license MIT" \
  || fail "metainfo lacks <project_license>MIT</project_license>"

# The copyright file in Debian's machine-readable format (DEP-5), its MIT
# (Expat) text the LICENSE file's: stanza lines indented by one space, blank
# lines as " .".
c=$root/$copyright
if [ -f "$c" ]; then
  [ "$(head -1 "$c")" = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" ] \
    && pass "copyright: DEP-5 Format line" || fail "copyright: first line is not DEP-5's Format: $(head -1 "$c")"
  grep -qx 'Files: \*' "$c" && grep -qx 'License: Expat' "$c" && grep -q '^Copyright: .*ReLoRA Workbench developers' "$c" \
    && pass "copyright: 'Files: *', 'License: Expat' and a Copyright line" \
    || fail "copyright: lacks 'Files: *', 'License: Expat' or a Copyright line naming the developers"
  expat=$(awk '/^License: Expat$/ {on = 1; next} on && !NF {exit} on && /^[^ ]/ {on = 0} on {sub(/^ /, ""); if ($0 == ".") $0 = ""; print}' "$c")
  [ "$expat" = "$(sed -n '/^Permission/,$p' "$source/LICENSE")" ] && pass "copyright: Expat text matches LICENSE" \
    || fail "copyright: the Expat text differs from LICENSE"
  perms=$(dpkg-deb -c "$deb" | awk -v f="./$copyright" '$NF == f {print $1}')
  [ "$perms" = "-rw-r--r--" ] && pass "copyright: mode 0644" || fail "copyright: mode $perms"
fi

# ---- the programs run ------------------------------------------------------------------------
export LD_LIBRARY_PATH=${cudalib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [ "$cuda" = 1 ]; then
  echo "(CUDA build: NVIDIA libraries from ${cudalib:-the default search path}, as on a machine with cuda-libraries-13-0)"
fi
programs=(relora)
[ "$gui" = 1 ] && programs+=(relora-workbench)
for p in "${programs[@]}"; do
  exe=$root/usr/bin/$p
  missing=$(ldd "$exe" 2>&1 | grep 'not found')
  [ -z "$missing" ] && pass "$p: every library found" || fail "$p: $missing"
  rpath=$(readelf -d "$exe" | grep -E 'RPATH|RUNPATH')
  [[ -z $rpath || $rpath != *"$build"* ]] && pass "$p: no RPATH into the build tree" || fail "$p: $rpath"
done
if help=$("$root/usr/bin/relora" --help 2>&1) && grep -q headline <<<"$help" && grep -q sweep <<<"$help"; then
  pass "relora --help"
else
  fail "relora --help: $help"
fi
if spec=$("$root/usr/bin/relora" spec --method relora --preset tiny 2>&1) && grep -q schema_version <<<"$spec"; then
  pass "relora spec"
else
  fail "relora spec: $spec"
fi

echo "$failures failure(s), $((SECONDS - start)) s"
[ $failures -eq 0 ]
