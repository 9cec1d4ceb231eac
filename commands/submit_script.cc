#include "commands/submit_script.h"

#include <cctype>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "commands/sbatch_template.h"  // kSbatchTemplate, generated from slurm/job.sbatch.in

namespace sf::commands {
namespace {

// The characters an #SBATCH value must not hold: sbatch splits its lines at white space and
// quotes, and none of these has a place in a Slurm value that shardforge passes on.
constexpr std::string_view kRefused = "'\"\\$`;<>";

// What a refused character is called in a message.
std::string character_name(char c) {
  if (c == '\n') return "a newline";
  if (c == '\t') return "a tab";
  if (c == ' ') return "a space";
  if (c == '\'') return "a single quote";
  if (c == '"') return "a double quote";
  if (c == '\\') return "a backslash";
  if (c == '`') return "a backtick";
  if (std::iscntrl(static_cast<unsigned char>(c))) return "a control character";
  return std::string("'") + c + "'";
}

// An sbatch option that submit writes itself or has a flag for: what to use instead.
struct ReservedOption {
  std::string_view name;  // long name, without "--"
  char letter;            // the short option, or 0
  std::string_view instead;
};
constexpr ReservedOption kReserved[] = {
    {"job-name", 'J', "use --job-name"},
    {"nodes", 'N', "use --nodes"},
    {"ntasks", 'n', "use --ntasks"},
    {"ntasks-per-node", 0, "use --ntasks-per-node"},
    {"cpus-per-task", 'c', "use --cpus-per-task"},
    {"mem", 0, "use --mem"},
    {"mem-per-cpu", 0, "use --mem-per-cpu"},
    {"gres", 0, "use --gres"},
    {"constraint", 'C', "use --constraint"},
    {"exclusive", 0, "use --exclusive"},
    {"time", 't', "use --time"},
    {"partition", 'p', "use --partition"},
    {"account", 'A', "use --account"},
    {"qos", 'q', "use --qos"},
    {"dependency", 'd', "use --after, or a --command list for a chain"},
    {"requeue", 0, "use --requeue"},
    {"chdir", 'D', "submit sets it to the directory it runs in"},
    {"output", 'o', "submit sets it: the job's log goes to output.dir"},
    {"open-mode", 0, "submit sets it: the log is appended to"},
};

bool is_name_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }

// One "#%..." line of a template: a directive, or a template comment (kept out of the script).
struct Directive {
  enum Kind { kComment, kIf, kElif, kElse, kEndif } kind = kComment;
  std::string name;  // kIf, kElif
};

Directive parse_directive(const std::string& line) {
  if (line.size() == 2 || line[2] == ' ') return {};
  std::istringstream in(line.substr(2));
  std::string word, name, extra;
  in >> word >> name >> extra;
  const bool named = word == "if" || word == "elif";
  if (!extra.empty() || named == name.empty())
    throw std::logic_error("slurm/job.sbatch.in: bad directive '" + line + "'");
  if (word == "if") return {Directive::kIf, name};
  if (word == "elif") return {Directive::kElif, name};
  if (word == "else") return {Directive::kElse, ""};
  if (word == "endif") return {Directive::kEndif, ""};
  throw std::logic_error("slurm/job.sbatch.in: unknown directive '" + line + "'");
}

// The open #%if blocks while filling.
class Branches {
 public:
  // Applies a directive; `flag` looks up a NAME.
  template <typename Flag>
  void apply(const Directive& d, const Flag& flag) {
    switch (d.kind) {
      case Directive::kComment:
        return;
      case Directive::kIf:
        blocks_.push_back({active(), false, false});
        blocks_.back().taken = blocks_.back().outer && flag(d.name);
        blocks_.back().on = blocks_.back().taken;
        return;
      case Directive::kElif:
      case Directive::kElse: {
        if (blocks_.empty()) throw std::logic_error("slurm/job.sbatch.in: #%else without #%if");
        Block& b = blocks_.back();
        const bool want = d.kind == Directive::kElse || flag(d.name);
        b.on = b.outer && !b.taken && want;
        b.taken = b.taken || b.on;
        return;
      }
      case Directive::kEndif:
        if (blocks_.empty()) throw std::logic_error("slurm/job.sbatch.in: #%endif without #%if");
        blocks_.pop_back();
        return;
    }
  }
  bool active() const { return blocks_.empty() || blocks_.back().on; }
  bool closed() const { return blocks_.empty(); }

 private:
  struct Block {
    bool outer;  // the enclosing block writes its lines
    bool on;     // this branch writes its lines
    bool taken;  // a branch of this block was (or is) written
  };
  std::vector<Block> blocks_;
};

// The @NAME@ placeholders of `line`, in order: {position of the first '@', NAME}.
std::vector<std::pair<size_t, std::string>> placeholders(const std::string& line) {
  std::vector<std::pair<size_t, std::string>> found;
  size_t pos = 0;
  while (true) {
    const size_t open = line.find('@', pos);
    const size_t close = open == std::string::npos ? open : line.find('@', open + 1);
    if (close == std::string::npos) break;
    const std::string name = line.substr(open + 1, close - open - 1);
    bool is_name = !name.empty();
    for (char c : name) is_name = is_name && is_name_char(c);
    if (!is_name) {  // a literal '@': look again from the next one
      pos = close;
      continue;
    }
    found.emplace_back(open, name);
    pos = close + 1;
  }
  return found;
}

// `value` for a one-line message: control characters as "\n", "\t" or "\xNN".
std::string printable(const std::string& value) {
  std::string out;
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (std::iscntrl(byte)) {
      const char* hex = "0123456789abcdef";
      out += std::string("\\x") + hex[byte >> 4] + hex[byte & 15];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string sbatch_value_error(const std::string& value) {
  for (char c : value) {
    if (std::isspace(static_cast<unsigned char>(c)) ||
        std::iscntrl(static_cast<unsigned char>(c)) || kRefused.find(c) != std::string_view::npos)
      return "'" + printable(value) + "' holds " + character_name(c) +
             ": an #SBATCH value has no white space, quotes, backslashes, '$', backticks, ';', "
             "'<' or '>'";
  }
  return "";
}

std::string memory_size_error(const std::string& value) {
  size_t digits = 0;
  while (digits < value.size() && std::isdigit(static_cast<unsigned char>(value[digits]))) ++digits;
  const std::string unit = value.substr(digits);
  const bool ok =
      digits > 0 &&
      (unit.empty() ||
       (unit.size() == 1 && std::string_view("KMGTkmgt").find(unit[0]) != std::string_view::npos));
  if (ok) return "";
  return "'" + printable(value) +
         "' is not a memory size: digits and an optional unit K, M, G or T "
         "(e.g. 100M, 4G; none: megabytes)";
}

std::string job_id_error(const std::string& value) {
  const bool ok = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
  return ok ? "" : "'" + printable(value) + "' is not a job id: expected the number sbatch printed";
}

std::string sbatch_arg_error(const std::string& arg) {
  if (arg.size() < 2 || arg[0] != '-' || arg == "--")
    return "'" + printable(arg) +
           "' is not an sbatch option: expected --name=value (or a short -Xvalue)";
  const std::string error = sbatch_value_error(arg);
  if (!error.empty()) return error + " (pass one option as --name=value)";
  const bool is_long = arg[1] == '-';
  const std::string name = is_long ? arg.substr(2, arg.find('=') - 2) : "";
  for (const ReservedOption& r : kReserved) {
    // A long option may be abbreviated as long as it stays unambiguous (getopt_long).
    const bool hit = is_long ? !name.empty() && r.name.substr(0, name.size()) == name
                             : r.letter != 0 && arg[1] == r.letter;
    if (hit) return "'" + arg + "' sets --" + std::string(r.name) + ": " + std::string(r.instead);
  }
  return "";
}

std::string shell_quote(const std::string& text) {
  const bool plain = !text.empty() && text.find_first_not_of(
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789_./:=,+@%-") == std::string::npos;
  if (plain) return text;
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string filename_pattern_literal(const std::string& path) {
  std::string out;
  for (char c : path) out += c == '%' ? std::string("%%") : std::string(1, c);
  return out;
}

std::string fill_template(const std::string& text, const TemplateValues& values) {
  const auto flag = [&](const std::string& name) {
    auto it = values.flags.find(name);
    if (it == values.flags.end())
      throw std::logic_error("slurm/job.sbatch.in: unknown #%if name " + name);
    return it->second;
  };
  std::istringstream in(text);
  std::string out;
  Branches branches;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("#%", 0) == 0) {
      branches.apply(parse_directive(line), flag);
      continue;
    }
    if (!branches.active()) continue;
    // The line once per item of its list placeholder, or once.
    const auto found = placeholders(line);
    std::string list_name;
    for (const auto& [pos, name] : found) {
      if (values.lists.count(name) == 0) continue;
      if (!list_name.empty())
        throw std::logic_error("slurm/job.sbatch.in: two lists on one line: " + line);
      list_name = name;
    }
    const std::vector<std::string> once = {""};
    const std::vector<std::string>& items = list_name.empty() ? once : values.lists.at(list_name);
    for (const std::string& item : items) {
      std::string filled;
      bool empty_value = false;
      size_t pos = 0;
      for (const auto& [open, name] : found) {
        std::string value = item;
        if (name != list_name) {
          auto it = values.text.find(name);
          if (it == values.text.end())
            throw std::logic_error("slurm/job.sbatch.in: unknown placeholder @" + name + "@");
          value = it->second;
        }
        filled += line.substr(pos, open - pos) + value;
        empty_value = empty_value || value.empty();
        pos = open + name.size() + 2;
      }
      filled += line.substr(pos);
      if (empty_value && line.rfind("#SBATCH", 0) == 0) continue;
      out += filled + "\n";
    }
  }
  if (!branches.closed()) throw std::logic_error("slurm/job.sbatch.in: #%if without #%endif");
  return out;
}

std::string fill_job_template(const TemplateValues& values) {
  return fill_template(kSbatchTemplate, values);
}

}  // namespace sf::commands
