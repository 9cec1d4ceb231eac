// The batch script of `shardforge submit`: checks of the values that go into it, and the filling
// of slurm/job.sbatch.in. No I/O, no MPI.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace sf::commands {

// Each check returns "" when `value` is fine, else what is wrong with it (without the option's
// name: CLI11 and the callers add it).
//
// A value for an #SBATCH line (sbatch splits those lines at white space and quotes): no white
// space or control characters, no quotes, backslashes, '$', backticks, ';', '<' or '>'.
std::string sbatch_value_error(const std::string& value);
// A memory size as Slurm reads it (--mem, --mem-per-cpu): digits and an optional unit K, M, G
// or T (either case; none: megabytes), e.g. 100M, 4G, 16000.
std::string memory_size_error(const std::string& value);
// A job id for --after: digits only (no array or het-job suffix).
std::string job_id_error(const std::string& value);
// One option for an #SBATCH line (--sbatch-arg): "--name=value" or "-Xvalue", an sbatch_value,
// and not an option that submit writes itself (--output, --chdir, ...) or has a flag for
// (--mem: use --mem); the message names the flag to use instead.
std::string sbatch_arg_error(const std::string& arg);

// `text` as one shell word: unchanged when it is plainly safe, else in single quotes.
std::string shell_quote(const std::string& text);

// `path` as a literal in an sbatch filename pattern (--output, --error, --input; sbatch(1),
// "filename pattern"), where %j, %x, ... are replaced and "%%" stands for '%'.
std::string filename_pattern_literal(const std::string& path);

// What fills a template (slurm/job.sbatch.in).
struct TemplateValues {
  std::map<std::string, std::string> text;                // @NAME@ -> the text
  std::map<std::string, bool> flags;                      // #%if NAME
  std::map<std::string, std::vector<std::string>> lists;  // a line with @NAME@: one per item
};

// Fills `text`: keeps only the branches of "#%if NAME" / "#%elif NAME" / "#%else" / "#%endif"
// (nestable) that apply, drops those lines and "#% " comments; replaces each @NAME@ (NAME in
// [A-Z_]) with values.text[NAME]; writes a line holding a list placeholder once per item (none:
// no line). An #SBATCH line whose value is empty is left out. Any other '@' stays. Throws
// std::logic_error for an unknown NAME, directive or unbalanced #%if (a bug in the template).
std::string fill_template(const std::string& text, const TemplateValues& values);

// fill_template of slurm/job.sbatch.in (compiled in).
std::string fill_job_template(const TemplateValues& values);

}  // namespace sf::commands
