// plan.json: the partition plan as JSON (search, info and Python read it), written atomically.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "stages/partition/plan.h"

namespace sf::stages {

// plan.json: {"format_version": 1, ...}; readers refuse other versions.
constexpr int kPlanFormatVersion = 1;

nlohmann::json plan_to_json(const PartitionPlan& plan);
// Throws std::runtime_error on a missing key or another format_version.
PartitionPlan plan_from_json(const nlohmann::json& json);
void write_plan(const PartitionPlan& plan, const std::string& path);  // atomic
PartitionPlan read_plan(const std::string& path);  // throws std::runtime_error naming path

}  // namespace sf::stages
