#!/usr/bin/env python3
"""Check a ReLoRA Workbench HDF5 snapshot (DESIGN section 8) with h5py alone.

Usage: check_snapshot.py SNAPSHOT.h5 EXPECTED_DIR

EXPECTED_DIR/manifest.json, written by tests/test_snapshot.cpp from the
engine's weights:
    {"datasets":   {"<name>": {"file": "<file>.npy", "atol": 0.0}, ...},
     "attributes": {"<name>": <value>, ...},
     "merged":     <number of LoRA targets>}

Checked: the set of dataset names; every dataset float32 (little-endian),
chunked, with exactly the filters shuffle then deflate level 4; shape and
values against the .npy files (atol 0 = bit-exact); the root attributes
(spec compared as parsed JSON); for every <module>.base_layer.weight that
<module>.weight == base_layer + lora_scale * lora_B @ lora_A within 1e-6.

Prints "OK: ..." and exits 0, or one "FAIL: ..." line per problem and exits 1.
"""
import json
import os
import sys

import h5py
import numpy as np

MERGE_ATOL = 1e-6


def check(path, expected_dir):
    errors = []
    with open(os.path.join(expected_dir, "manifest.json")) as fh:
        manifest = json.load(fh)
    want = manifest["datasets"]
    with h5py.File(path, "r") as f:
        names = set(f.keys())
        for n in sorted(set(want) - names):
            errors.append(f"missing dataset {n}")
        for n in sorted(names - set(want)):
            errors.append(f"unexpected dataset {n}")
        for n in sorted(names & set(want)):
            d = f[n]
            if not isinstance(d, h5py.Dataset):
                errors.append(f"{n}: not a dataset")
                continue
            if d.dtype != np.dtype("<f4"):
                errors.append(f"{n}: dtype {d.dtype}, expected little-endian float32")
            if d.chunks is None:
                errors.append(f"{n}: not chunked")
            plist = d.id.get_create_plist()
            filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
            if filters != [h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE]:
                errors.append(f"{n}: filters {filters}, expected shuffle then deflate")
            elif d.compression_opts != 4:
                errors.append(f"{n}: deflate level {d.compression_opts}, expected 4")
            expected = np.load(os.path.join(expected_dir, want[n]["file"]))
            if d.shape != expected.shape:
                errors.append(f"{n}: shape {d.shape}, expected {expected.shape}")
                continue
            values = d[()]
            atol = float(want[n].get("atol", 0.0))
            diff = float(np.max(np.abs(values.astype(np.float64) - expected.astype(np.float64)), initial=0.0))
            if (atol == 0.0 and not np.array_equal(values, expected)) or diff > atol:
                errors.append(f"{n}: values differ from the engine's (max |diff| {diff:.3g}, allowed {atol:g})")

        attrs = manifest.get("attributes", {})
        for k, expected in attrs.items():
            if k not in f.attrs:
                errors.append(f"missing attribute {k}")
                continue
            got = f.attrs[k]
            if isinstance(got, bytes):
                errors.append(f"attribute {k}: stored as bytes, expected a UTF-8 string")
                got = got.decode()
            if k == "spec":
                if json.loads(got) != json.loads(expected):
                    errors.append("attribute spec: JSON differs from the run's spec")
            elif isinstance(expected, str):
                if not isinstance(got, str) or got != expected:
                    errors.append(f"attribute {k}: {got!r}, expected {expected!r}")
            elif isinstance(expected, int):
                if not isinstance(got, (int, np.integer)) or int(got) != expected:
                    errors.append(f"attribute {k}: {got!r}, expected integer {expected}")
            else:
                if not isinstance(got, (float, np.floating)) or abs(float(got) - expected) > 1e-6 * max(1.0, abs(expected)):
                    errors.append(f"attribute {k}: {got!r}, expected {expected}")

        merged = 0
        for n in sorted(names):
            if not n.endswith(".base_layer.weight"):
                continue
            module = n[: -len(".base_layer.weight")]
            parts = {p: module + p for p in (".weight", ".lora_A.weight", ".lora_B.weight")}
            if any(p not in names for p in parts.values()):
                errors.append(f"{module}: base_layer without weight / lora_A / lora_B")
                continue
            if "lora_scale" not in f.attrs:
                errors.append("LoRA tensors but no lora_scale attribute")
                break
            s = float(f.attrs["lora_scale"])
            W = f[n][()].astype(np.float64)
            A = f[parts[".lora_A.weight"]][()].astype(np.float64)
            B = f[parts[".lora_B.weight"]][()].astype(np.float64)
            eff = f[parts[".weight"]][()].astype(np.float64)
            err = float(np.max(np.abs(eff - (W + s * (B @ A)))))
            if err > MERGE_ATOL:
                errors.append(f"{module}.weight is not base_layer + s*B*A (max |diff| {err:.3g})")
            merged += 1
        if "merged" in manifest and merged != int(manifest["merged"]):
            errors.append(f"{merged} merged weights, expected {manifest['merged']}")
    return errors, len(names), merged, len(attrs)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    errors, datasets, merged, attributes = check(sys.argv[1], sys.argv[2])
    for e in errors:
        print("FAIL: " + e)
    if errors:
        return 1
    print(f"OK: {datasets} datasets, {merged} merged weights, {attributes} attributes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
