// Minimal .npy (format 1.0) reading and writing for the tests' exchanges with
// Debian's Python: little-endian float32 and int32, C order.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace relora::npy {

template <typename T>
constexpr const char* descr() {
    return sizeof(T) == 4 && T(0.5) != T(0) ? "<f4" : "<i4";
}

template <typename T>
void save(const std::string& path, const std::vector<size_t>& shape, const T* data) {
    std::string dims;
    size_t count = 1;
    for (size_t d : shape) {
        dims += std::to_string(d) + ",";
        count *= d;
    }
    if (shape.size() > 1) dims.pop_back();
    std::string header = std::string("{'descr': '") + descr<T>() + "', 'fortran_order': False, 'shape': (" + dims + "), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::ofstream out(path, std::ios::binary);
    if (!out) throw std::runtime_error("cannot write " + path);
    out.write("\x93NUMPY\x01\x00", 8);
    const uint16_t len = static_cast<uint16_t>(header.size());
    out.write(reinterpret_cast<const char*>(&len), 2);
    out << header;
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
}

template <typename T>
std::vector<T> load(const std::string& path, std::vector<size_t>* shape = nullptr) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    char magic[8];
    uint16_t len = 0;
    in.read(magic, 8);
    in.read(reinterpret_cast<char*>(&len), 2);
    std::string header(len, ' ');
    in.read(header.data(), len);
    if (header.find(descr<T>()) == std::string::npos)
        throw std::runtime_error(path + ": unexpected dtype in " + header);
    const auto open = header.find('(', header.find("shape"));
    const auto close = header.find(')', open);
    std::vector<size_t> dims;
    std::stringstream s(header.substr(open + 1, close - open - 1));
    std::string item;
    size_t count = 1;
    while (std::getline(s, item, ','))
        if (item.find_first_not_of(' ') != std::string::npos) {
            dims.push_back(std::stoul(item));
            count *= dims.back();
        }
    if (shape) *shape = dims;
    std::vector<T> data(count);
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(count * sizeof(T)));
    if (!in) throw std::runtime_error(path + ": truncated");
    return data;
}

}  // namespace relora::npy
