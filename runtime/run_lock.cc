#include "runtime/run_lock.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "runtime/stop.h"

namespace sf::runtime {
namespace {

// The whole file; "" when it cannot be read (gone meanwhile).
std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `text` to a new file `path` (O_EXCL) and fsyncs it. False (errno set) on failure.
bool write_new_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return ok;
}

// One attempt to create `lock` holding `text`: link(2) of a private file, which is atomic on
// NFS too (a lost reply is caught by the link count), else O_EXCL where hard links are not
// supported. True when the lock is ours; false when it exists. Throws on other errors.
bool try_create(const std::string& lock, const std::string& text) {
  const std::string mine = lock + "." + host_name() + "." + std::to_string(::getpid());
  ::unlink(mine.c_str());
  if (!write_new_file(mine, text))
    throw std::runtime_error(mine + ": cannot write: " + std::strerror(errno));
  const int rc = ::link(mine.c_str(), lock.c_str());
  const int link_errno = errno;
  struct stat st {};
  const bool linked = rc == 0 || (::stat(mine.c_str(), &st) == 0 && st.st_nlink == 2);
  ::unlink(mine.c_str());
  if (linked) return true;
  if (link_errno == EEXIST) return false;
  if (link_errno == EPERM || link_errno == EOPNOTSUPP || link_errno == EMLINK) {
    if (write_new_file(lock, text)) return true;
    if (errno == EEXIST) return false;
  }
  throw std::runtime_error(lock + ": cannot create: " + std::strerror(link_errno));
}

std::string describe_holder(const nlohmann::json& h) {
  return "`" + h.value("command", std::string("?")) + "` (pid " +
         std::to_string(h.value("pid", 0L)) + " on host " + h.value("host", std::string("?")) +
         ", started " + h.value("started", std::string("?")) + ", " +
         std::to_string(h.value("ranks", 0)) + " rank(s))";
}

std::string env_text(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

// Why the lock's holder is certainly gone (it ran on this host, or it was an earlier run of
// this requeued Slurm job), or "" when it may be alive.
std::string gone_reason(const nlohmann::json& h) {
  const std::string job = env_text("SLURM_JOB_ID");
  if (!job.empty() && h.value("slurm_job_id", std::string()) == job &&
      h.value("slurm_restart_count", std::string()) != env_text("SLURM_RESTART_COUNT"))
    return "it was an earlier run of this Slurm job " + job + ", which Slurm requeued";
  return local_process_gone(h);
}

}  // namespace

std::string local_process_gone(const nlohmann::json& record) {
  if (record.value("host", std::string()) != host_name()) return "";
  const long pid = record.value("pid", 0L);
  if (pid <= 0) return "";
  const long long ticks = process_start_ticks(pid);
  if (ticks < 0) return "process " + std::to_string(pid) + " is gone";
  const long long recorded = record.value("pid_start_ticks", 0LL);
  if (ticks > 0 && recorded > 0 && ticks != recorded)
    return "pid " + std::to_string(pid) + " now belongs to another process (another start time)";
  return "";
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

long long process_start_ticks(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) {
    // No /proc entry: no such process (or no procfs, where kill(0) decides; start unknown).
    return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM ? 0 : -1;
  }
  // "pid (comm) state ppid ... starttime(22) ...": comm may hold spaces and parentheses.
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(line.substr(paren + 1));
  std::vector<std::string> fields((std::istream_iterator<std::string>(rest)),
                                  std::istream_iterator<std::string>());
  if (!fields.empty() && fields[0] == "Z") return -1;  // a zombie has ended
  if (fields.size() < 20) return 0;
  return std::atoll(fields[19].c_str());  // field 22; fields[0] is field 3
}

RunLock::RunLock(const std::string& dir, const std::string& command, int ranks)
    : path_(dir + "/.shardforge/lock") {
  const nlohmann::json mine = {{"format_version", kLockFormatVersion},
                               {"host", host_name()},
                               {"pid", static_cast<long>(::getpid())},
                               {"pid_start_ticks", process_start_ticks(::getpid())},
                               {"started", utc_now_text()},
                               {"command", command},
                               {"ranks", ranks},
                               {"slurm_job_id", env_text("SLURM_JOB_ID")},
                               {"slurm_restart_count", env_text("SLURM_RESTART_COUNT")}};
  text_ = mine.dump() + "\n";
  const std::string how = "; once you are sure that run is gone, remove " + path_ + " and rerun";
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (try_create(path_, text_)) return;
    const std::string held = read_text(path_);
    if (held.empty()) continue;  // released meanwhile (or not yet written, without link)
    const nlohmann::json holder = nlohmann::json::parse(held, nullptr, false);
    if (holder.is_discarded() || !holder.is_object())
      throw RunDirBusy("output.dir " + dir + " is locked by " + path_ +
                       ", which is not a shardforge lock file" + how);
    const std::string gone = gone_reason(holder);
    if (gone.empty()) {
      const bool here = holder.value("host", std::string()) == host_name();
      throw RunDirBusy("output.dir " + dir + " is in use by " + describe_holder(holder) +
                       ", which holds " + path_ +
                       (here ? ": that process is still running. Wait for it, or choose another "
                               "output.dir"
                             : ": it runs on another host, which shardforge cannot check from "
                               "here. Wait for it, or choose another output.dir") +
                       how);
    }
    // Stale: move it aside under a private name; only if what we moved is what we judged
    // stale is it ours to drop (another run may have taken over first).
    const std::string aside = path_ + ".stale." + host_name() + "." + std::to_string(::getpid());
    if (std::rename(path_.c_str(), aside.c_str()) != 0) continue;
    if (read_text(aside) != held) {
      if (::link(aside.c_str(), path_.c_str()) != 0)
        spdlog::warn("{}: a lock taken meanwhile was moved to {}", path_, aside);
      ::unlink(aside.c_str());
      continue;
    }
    ::unlink(aside.c_str());
    spdlog::warn("output.dir {}: took over the stale lock of {}: {}", dir, describe_holder(holder),
                 gone);
  }
  throw RunDirBusy("output.dir " + dir + ": could not take " + path_ +
                   ": other runs keep taking it" + how);
}

RunLock::~RunLock() {
  // Never remove a lock that another run took over (after ours was judged stale).
  if (read_text(path_) == text_) ::unlink(path_.c_str());
}

}  // namespace sf::runtime
