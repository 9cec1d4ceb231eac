// `shardforge submit`'s batch script without Slurm: the checks of the values that go on
// #SBATCH lines, the template's #%if branches and lists, chains, and the script of each command.
#include "commands/submit_script.h"

#include <gtest/gtest.h>

#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands/submit.h"
#include "runtime/config.h"

namespace sf::commands {
namespace {

TEST(SubmitCheck, SbatchValueRefusesWhatCouldEscapeTheLine) {
  for (const std::string& ok :
       std::vector<std::string>{"gpu:2", "gpu:a100:4,shard:1", "avx512&ib", "[rack1|rack2]",
                                "normal", "02:00:00", "proj-123_x.y", "B:TERM@120"})
    EXPECT_EQ(sbatch_value_error(ok), "") << ok;
  for (const std::string& bad :
       std::vector<std::string>{"a b", "a\nb", "a\tb", "a'b", "a\"b", "a\\b", "$(id)", "a`id`",
                                "a;b", "a<b", "a>b", std::string("a\0b", 3)})
    EXPECT_NE(sbatch_value_error(bad), "") << bad;
  EXPECT_NE(sbatch_value_error("a\nb").find("'a\\nb' holds a newline"), std::string::npos)
      << "the message stays on one line: " << sbatch_value_error("a\nb");
}

TEST(SubmitCheck, MemorySizeIsDigitsAndOneUnit) {
  for (const std::string& ok :
       std::vector<std::string>{"100M", "4G", "1T", "512K", "16000", "0", "8g"})
    EXPECT_EQ(memory_size_error(ok), "") << ok;
  for (const std::string& bad :
       std::vector<std::string>{"", "G", "1.5G", "100MB", "4 G", "-1G", "4GiB", "1P", "$MEM"})
    EXPECT_NE(memory_size_error(bad), "") << bad;
}

TEST(SubmitCheck, JobIdIsANumber) {
  EXPECT_EQ(job_id_error("12345"), "");
  for (const std::string& bad : std::vector<std::string>{"", "12_3", "12+0", "x", "12 ", "-1"})
    EXPECT_NE(job_id_error(bad), "") << bad;
}

TEST(SubmitCheck, SbatchArgIsOneOptionSubmitDoesNotOwn) {
  for (const std::string& ok :
       std::vector<std::string>{"--mail-type=END", "--signal=B:TERM@120", "--comment=x",
                                "--reservation=maint", "-wnode1", "--mem-per-gpu=8G", "--nice=5"})
    EXPECT_EQ(sbatch_arg_error(ok), "") << ok;
  for (const std::string& bad :
       std::vector<std::string>{"", "-", "--", "comment=x", "--comment=a b", "--comment=$(id)"})
    EXPECT_NE(sbatch_arg_error(bad), "") << bad;
  // An option with a flag of its own, or one submit writes itself: named, with what to use.
  EXPECT_NE(sbatch_arg_error("--mem=4G").find("use --mem"), std::string::npos);
  EXPECT_NE(sbatch_arg_error("--dependency=afterok:1").find("--after"), std::string::npos);
  EXPECT_NE(sbatch_arg_error("--output=x.log").find("output.dir"), std::string::npos);
  EXPECT_NE(sbatch_arg_error("--out=x.log").find("sets --output"), std::string::npos)
      << "an abbreviation of --output (getopt_long takes it)";
  EXPECT_NE(sbatch_arg_error("-Jname").find("use --job-name"), std::string::npos);
  EXPECT_NE(sbatch_arg_error("--exclusive").find("use --exclusive"), std::string::npos);
}

TEST(SubmitTemplate, BranchesKeepOnlyWhatApplies) {
  TemplateValues values;
  values.flags = {{"A", true}, {"B", false}};
  const std::string text =
      "#% a template comment\n"
      "#%if A\n"
      "a\n"
      "#%if B\n"
      "ab\n"
      "#%else\n"
      "a-not-b\n"
      "#%endif\n"
      "#%elif B\n"
      "b\n"
      "#%else\n"
      "neither\n"
      "#%endif\n"
      "#%if B\n"
      "b2\n"
      "#%elif A\n"
      "a2\n"
      "#%endif\n"
      "end\n";
  EXPECT_EQ(fill_template(text, values), "a\na-not-b\na2\nend\n");
  values.flags["A"] = false;
  EXPECT_EQ(fill_template(text, values), "neither\nend\n");
}

TEST(SubmitTemplate, PlaceholdersListsAndEmptySbatchLines) {
  TemplateValues values;
  values.text = {{"NAME", "job"}, {"EMPTY", ""}};
  values.lists = {{"ARGS", {"--a=1", "--b=2"}}, {"NONE", {}}};
  const std::string text =
      "#SBATCH --job-name=@NAME@\n"
      "#SBATCH --time=@EMPTY@\n"
      "#SBATCH @ARGS@\n"
      "#SBATCH @NONE@\n"
      "echo @NAME@ user@host @@ @EMPTY@.\n";
  EXPECT_EQ(fill_template(text, values),
            "#SBATCH --job-name=job\n#SBATCH --a=1\n#SBATCH --b=2\necho job user@host @@ .\n");
}

TEST(SubmitTemplate, MistakesInTheTemplateThrow) {
  TemplateValues values;
  values.flags = {{"A", true}};
  EXPECT_THROW(fill_template("@NOPE@\n", values), std::logic_error);
  EXPECT_THROW(fill_template("#%if NOPE\n#%endif\n", values), std::logic_error);
  EXPECT_THROW(fill_template("#%if A\n", values), std::logic_error);
  EXPECT_THROW(fill_template("#%endif\n", values), std::logic_error);
  EXPECT_THROW(fill_template("#%else\n", values), std::logic_error);
  EXPECT_THROW(fill_template("#%fi\n", values), std::logic_error);
  EXPECT_THROW(fill_template("#%if\n#%endif\n", values), std::logic_error);
}

TEST(SubmitChain, ProducerThenItsConsumers) {
  EXPECT_EQ(chain_error({"build"}), "");
  EXPECT_EQ(chain_error({"build", "eval", "search", "info"}), "");
  EXPECT_EQ(chain_error({"dedup", "dedup-quality"}), "");
  EXPECT_EQ(chain_error({"run", "search"}), "");
  EXPECT_EQ(chain_error({"eval", "search"}), "") << "consumers of a run directory made before";
  EXPECT_NE(chain_error({}), "");
  EXPECT_NE(chain_error({"build", "build"}).find("listed twice"), std::string::npos);
  EXPECT_NE(chain_error({"dedup", "run"}).find("`run` cannot follow `dedup`"), std::string::npos);
  EXPECT_NE(chain_error({"run", "eval"}).find("`eval` cannot follow `run`"), std::string::npos);
  EXPECT_NE(chain_error({"build", "dedup-quality"}), "");
}

// The script of `job` for a config whose output.dir is /runs/x, from /work.
std::string script(const SubmitOptions& options, const SubmitJob& job,
                   const std::vector<std::string>& overrides = {}) {
  runtime::Config config;
  config.source = "/work/job.yaml";
  config.output.dir = "/runs/x";
  return job_script(config, overrides, options, job, "/opt/bin/shardforge", "/work");
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(SubmitScript, ResourcesBecomeSbatchLines) {
  SubmitOptions options;
  options.mem = "100M";
  options.gres = "gpu:2";
  options.qos = "high";
  options.account = "proj";
  options.constraint = "avx512";
  options.exclusive = true;
  options.sbatch_args = {"--mail-type=END", "--comment=x"};
  const std::string text = script(options, {"build", true, "42"});
  for (const std::string line :
       {"#SBATCH --mem=100M", "#SBATCH --gres=gpu:2", "#SBATCH --qos=high",
        "#SBATCH --account=proj", "#SBATCH --constraint=avx512", "#SBATCH --exclusive",
        "#SBATCH --dependency=afterok:42", "#SBATCH --mail-type=END", "#SBATCH --comment=x",
        "#SBATCH --output=/runs/x/slurm-build-%j.log", "#SBATCH --chdir=/work",
        "cmd=(/opt/bin/shardforge build /work/job.yaml)"})
    EXPECT_TRUE(has_line(text, line)) << line << " not in:\n" << text;
  for (const std::string& absent : std::vector<std::string>{
           "#SBATCH --mem-per-cpu", "#SBATCH --requeue", "#SBATCH --partition", "#SBATCH --time"})
    EXPECT_EQ(text.find(absent), std::string::npos) << absent << " is not set";
  EXPECT_EQ(text.find("#%"), std::string::npos) << "template lines reach the script";
}

TEST(SubmitScript, BadValuesAreConfigErrorsNamingTheFlag) {
  SubmitOptions options;
  options.time = "1 h";
  try {
    script(options, {"build", true, ""});
    FAIL() << "a time with a space was taken";
  } catch (const runtime::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--time"), std::string::npos) << e.what();
  }
  options = {};
  options.mem = "1.5G";
  EXPECT_THROW(script(options, {"build", true, ""}), runtime::ConfigError);
  options = {};
  options.mem = "1G";
  options.mem_per_cpu = "1G";
  EXPECT_THROW(script(options, {"build", true, ""}), runtime::ConfigError);
  options = {};
  options.resume = true;
  EXPECT_THROW(script(options, {"info", false, ""}), runtime::ConfigError);
}

// No condition whose answer submit knows: a test of two numbers, such as [[ 1 -eq 1 ]].
TEST(SubmitScript, NoConstantConditions) {
  const std::regex constant(R"(\[\[ *[0-9]+ +-(eq|ne|lt|le|gt|ge) +[0-9]+)");
  for (bool resumable : {true, false})
    for (bool resume : {true, false})
      for (bool requeue : {true, false}) {
        if (resume && !resumable) continue;
        SubmitOptions options;
        options.resume = resume;
        options.requeue = requeue;
        const std::string text = script(options, {"build", resumable, ""}, {"seed=3"});
        EXPECT_FALSE(std::regex_search(text, constant)) << text;
        EXPECT_EQ(text.find("--resume") != std::string::npos, resumable) << text;
        EXPECT_EQ(text.find("SLURM_RESTART_COUNT:-0} -gt 0") != std::string::npos,
                  resumable && !resume)
            << text;
        EXPECT_EQ(has_line(text, "#SBATCH --requeue"), requeue) << text;
        EXPECT_EQ(text.find("scontrol requeue") != std::string::npos, requeue) << text;
        EXPECT_TRUE(has_line(text, "cmd=(/opt/bin/shardforge build /work/job.yaml --set seed=3)"))
            << text;
      }
}

}  // namespace
}  // namespace sf::commands
