#include "core/Checkpoint.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace relora {
namespace {

constexpr const char* kMagic = "RELORA-CKPT 1";

}  // namespace

void writeCheckpoint(const std::string& path, const CheckpointData& data) {
    nlohmann::json header = {{"spec", data.specJson},
                             {"step", data.step},
                             {"restart_count", data.restartCount},
                             {"sampler_position", data.samplerPosition},
                             {"lora_enabled", data.loraEnabled},
                             {"counters", data.counters},
                             {"product_choices", data.productChoices}};
    nlohmann::json index = nlohmann::json::array();
    for (const auto& [name, values] : data.tensors) index.push_back({name, values.size()});
    header["tensors"] = index;

    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw std::runtime_error("cannot write checkpoint " + tmp);
        out << kMagic << "\n" << header.dump() << "\n";
        for (const auto& [name, values] : data.tensors)
            out.write(reinterpret_cast<const char*>(values.data()),
                      static_cast<std::streamsize>(values.size() * sizeof(float)));
        out.flush();
        if (!out) {
            out.close();
            std::remove(tmp.c_str());
            throw std::runtime_error("writing checkpoint " + path + " failed (disk full?)");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        throw std::runtime_error("cannot rename checkpoint to " + path + ": " + ec.message());
    }
}

CheckpointData readCheckpoint(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read checkpoint " + path);
    std::string magic, headerLine;
    std::getline(in, magic);
    if (magic != kMagic) throw std::runtime_error(path + " is not a ReLoRA Workbench checkpoint");
    std::getline(in, headerLine);
    CheckpointData data;
    try {
        const auto header = nlohmann::json::parse(headerLine);
        data.specJson = header.at("spec").get<std::string>();
        data.step = header.at("step").get<int>();
        data.restartCount = header.at("restart_count").get<int>();
        data.samplerPosition = header.at("sampler_position").get<uint64_t>();
        data.loraEnabled = header.at("lora_enabled").get<bool>();
        data.counters = header.at("counters").get<std::map<std::string, int64_t>>();
        data.productChoices = header.value("product_choices", std::string());
        for (const auto& entry : header.at("tensors")) {
            auto& values = data.tensors[entry.at(0).get<std::string>()];
            values.resize(entry.at(1).get<size_t>());
            in.read(reinterpret_cast<char*>(values.data()),
                    static_cast<std::streamsize>(values.size() * sizeof(float)));
            if (!in) throw std::runtime_error("truncated");
        }
    } catch (const std::exception& e) {
        throw std::runtime_error("checkpoint " + path + " is damaged: " + e.what());
    }
    return data;
}

}  // namespace relora
