#include "runtime/run_dir.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "io/atomic_file.h"
#include "runtime/stop.h"

#ifndef SHARDFORGE_VERSION
#define SHARDFORGE_VERSION "0.0.0"
#endif

namespace sf::runtime {
namespace {

double status_field_mib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t len = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, len, field) == 0) return std::stod(line.substr(len + 1)) / 1024.0;
  return 0;
}


}  // namespace

std::string format_seconds(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof(buf), "%.1fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else
    std::snprintf(buf, sizeof(buf), "%dh%02dm", static_cast<int>(s) / 3600,
                  (static_cast<int>(s) % 3600) / 60);
  return buf;
}

void setup_logging(int rank, int size, bool verbose) {
  auto logger = spdlog::stderr_color_mt("shardforge");
  logger->set_pattern("[%H:%M:%S.%e] [rank " + std::to_string(rank) + "/" + std::to_string(size) +
                      "] [%^%l%$] %v");
  logger->set_level(rank == 0 || verbose ? spdlog::level::info : spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return CPU_COUNT(&set);
}

int choose_threads(const Config& config, const cluster::Comm& comm) {
  if (config.threads > 0) return config.threads;
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int share = std::max(1, cores / std::max(1, comm.local_size()));
  const int bound = usable_cpus();
  return bound > 0 ? std::min(share, bound) : share;
}

void warn_if_oversubscribed(int threads, int rank) {
  const int bound = usable_cpus();
  if (bound > 0 && threads > bound)
    spdlog::warn("rank {} runs {} threads but may use only {} CPU(s): threads will share "
                 "them. Under mpirun pass --bind-to none (or --map-by slot:PE={}); under Slurm "
                 "set --cpus-per-task={}",
                 rank, threads, bound, threads, threads);
}

// Steps of at most this many units log each one instead of every 2 s.
constexpr int64_t kEveryUnitMax = 100;

stages::ProgressFn make_progress_logger(int rank) {
  // Every rank records its progress for `shardforge status` (runtime/stop.h); rank 0 logs.
  if (rank != 0) return record_progress;
  struct StepState {
    std::chrono::steady_clock::time_point start, last;
  };
  auto states = std::make_shared<std::map<std::string, StepState>>();
  return [states](const std::string& step, int64_t done, int64_t total) {
    record_progress(step, done, total);
    const auto now = std::chrono::steady_clock::now();
    auto [it, fresh] = states->try_emplace(step, StepState{now, now});
    // A step of few units (k-means iterations: each a pass over the sample) logs every unit;
    // tests/e2e/fault_term_train.sh bounds a stop in iterations against these lines.
    const bool every_unit = total <= kEveryUnitMax;
    if (fresh && done < total) {  // the first report: nothing to time yet
      if (every_unit) spdlog::info("{}: {}/{}", step, done, total);
      return;
    }
    if (fresh) {  // done in one step: nothing to time
      states->erase(step);
      if (stages::counts_bytes(step))
        spdlog::info("{}: {} done", step, human_bytes(static_cast<uint64_t>(total)));
      else
        spdlog::info("{}: {}/{} done", step, done, total);
      return;
    }
    StepState& s = it->second;
    const bool finished = done >= total;
    if (!finished && !every_unit && now - s.last < std::chrono::seconds(2)) return;
    s.last = now;
    const double secs = std::chrono::duration<double>(now - s.start).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
    const double pct = total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
    if (stages::counts_bytes(step)) {
      const std::string of =
          human_bytes(static_cast<uint64_t>(done)) + "/" + human_bytes(static_cast<uint64_t>(total));
      if (finished)
        spdlog::info("{}: {} done in {} ({}/s)", step, of, format_seconds(secs), human_bytes(static_cast<uint64_t>(rate)));
      else
        spdlog::info("{}: {} ({:.1f}%), {}/s, ETA {}", step, of, pct, human_bytes(static_cast<uint64_t>(rate)),
                     format_seconds(eta));
    } else if (finished) {
      spdlog::info("{}: {}/{} done in {} ({:.0f}/s)", step, done, total, format_seconds(secs), rate);
    } else {
      spdlog::info("{}: {}/{} ({:.1f}%), {:.0f}/s, ETA {}", step, done, total, pct, rate,
                   format_seconds(eta));
    }
    if (finished) states->erase(step);
  };
}

double current_rss_mib() { return status_field_mib("VmRSS:"); }
double peak_rss_mib() { return status_field_mib("VmHWM:"); }

// The sampling thread of StagePeak: the largest resident size read from /proc/self/statm
// (its second field, in pages) until stopped.
struct StagePeak::Sampler {
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  uint64_t max_pages = 0;
  int fd = -1;
  std::thread thread;

  uint64_t resident_pages() const {
    char buf[128];
    const ssize_t n = fd < 0 ? -1 : ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    unsigned long long size = 0, resident = 0;
    return std::sscanf(buf, "%llu %llu", &size, &resident) == 2 ? resident : 0;
  }
  void sample() { max_pages = std::max(max_pages, resident_pages()); }

  Sampler() : fd(::open("/proc/self/statm", O_RDONLY | O_CLOEXEC)) {
    sample();
    if (fd < 0) return;  // not Linux: VmHWM alone (0 too when /proc is missing)
    thread = std::thread([this] {
      std::unique_lock<std::mutex> lock(mutex);
      while (!wake.wait_for(lock, std::chrono::milliseconds(kSampleMs), [this] { return stop; }))
        sample();
    });
  }
  ~Sampler() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    wake.notify_one();
    if (thread.joinable()) thread.join();
    if (fd >= 0) ::close(fd);
  }
  double max_mib() {
    std::lock_guard<std::mutex> lock(mutex);
    sample();
    return static_cast<double>(max_pages) * static_cast<double>(::sysconf(_SC_PAGESIZE)) /
           (1 << 20);
  }
};

StagePeak::StagePeak() : sampler_(std::make_unique<Sampler>()), hwm_at_start_mib_(peak_rss_mib()) {}
StagePeak::~StagePeak() = default;

double StagePeak::finish() {
  const double sampled = sampler_->max_mib();
  sampler_.reset();
  // VmHWM grew while it ran: the new process peak was reached inside this stretch.
  const double hwm = peak_rss_mib();
  return hwm > hwm_at_start_mib_ ? std::max(hwm, sampled) : sampled;
}

void StageLog::begin(const std::string& stage) {
  current_ = stage;
  enter_stage(stage);
  peak_ = std::make_unique<StagePeak>();
  start_ = std::chrono::steady_clock::now();
}

void StageLog::end() {
  Entry e;
  e.stage = current_;
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  e.peak_rss_mib = peak_ ? peak_->finish() : peak_rss_mib();
  peak_.reset();
  const double budget_mib = static_cast<double>(budget_.bytes) / (1 << 20);
  if (budget_.bytes > 0 && e.peak_rss_mib > budget_mib)
    spdlog::warn("{}: this rank's peak {:.0f} MiB went over the memory budget {} per rank ({})",
                 e.stage, e.peak_rss_mib, format_bytes(budget_.bytes), budget_.source);
  entries_.push_back(e);
}

namespace {

// Rank 0's part of write_run_json: records `stages` (gather_stage_log's) in <dir>/run.json.
void write_run_json_file(int ranks, const std::string& dir, const std::string& command,
                         int threads, const MemoryBudget& budget, nlohmann::json stages,
                         const nlohmann::json& summary) {
  nlohmann::json entry = {{"ranks", ranks}, {"threads_per_rank", threads}};
  if (budget.bytes > 0) {
    const double budget_mib = static_cast<double>(budget.bytes) / (1 << 20);
    entry["memory_budget_mib"] = budget_mib;
    entry["memory_budget_source"] = budget.source;
    for (auto& stage : stages) {
      double peak = 0;
      for (const auto& r : stage["peak_rss_mib"]) peak = std::max(peak, r.get<double>());
      stage["peak_over_budget"] = std::round(peak / budget_mib * 1000) / 1000;
      stage["over_budget"] = peak > budget_mib;
    }
  }
  entry["stages"] = std::move(stages);
  entry["summary"] = summary;
  // One run.json per run directory; each command records its own entry.
  const std::string path = dir + "/run.json";
  nlohmann::json run;
  if (std::ifstream in(path); in) {
    run = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (run.is_discarded() || !run.is_object() || run.value("format_version", 0) != kRunJsonFormatVersion)
      run = nlohmann::json::object();
  }
  run["format_version"] = kRunJsonFormatVersion;
  run["version"] = SHARDFORGE_VERSION;
  run["commands"][command] = entry;
  io::publish_text(path, run.dump(2) + "\n");
}

}  // namespace

nlohmann::json gather_stage_log(cluster::Comm& comm, const StageLog& log) {
  nlohmann::json mine = nlohmann::json::array();
  for (const auto& e : log.entries())
    mine.push_back({{"name", e.stage}, {"seconds", e.seconds}, {"peak_rss_mib", e.peak_rss_mib}});
  const std::string text = mine.dump();
  const auto parts = comm.gather(cluster::Bytes(text.begin(), text.end()), 0);
  if (comm.rank() != 0) return nullptr;
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& part : parts) {
    const auto per_rank = nlohmann::json::parse(std::string(part.begin(), part.end()));
    for (size_t i = 0; i < per_rank.size(); ++i) {
      if (stages.size() <= i)
        stages.push_back({{"name", per_rank[i]["name"]},
                          {"seconds", nlohmann::json::array()},
                          {"peak_rss_mib", nlohmann::json::array()}});
      stages[i]["seconds"].push_back(per_rank[i]["seconds"]);
      stages[i]["peak_rss_mib"].push_back(per_rank[i]["peak_rss_mib"]);
    }
  }
  return stages;
}

void write_run_json(cluster::Comm& comm, const std::string& dir, const std::string& command,
                    int threads, const StageLog& log, const nlohmann::json& summary) {
  const nlohmann::json stages = gather_stage_log(comm, log);
  // Rank 0 writes; all ranks agree on how that went, so none exits 0 while it fails.
  cluster::run_local_phase(comm, "write run.json", [&] {
    if (comm.rank() == 0)
      write_run_json_file(comm.size(), dir, command, threads, log.budget(), stages, summary);
  });
}

void make_run_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw std::runtime_error("output.dir " + dir + ": cannot create: " + ec.message());
}

}  // namespace sf::runtime
