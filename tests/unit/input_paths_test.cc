#include "io/input_paths.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/config.h"
#include "tests/test_util.h"

namespace sf::io {
namespace {

namespace fs = std::filesystem;
using Paths = std::vector<std::string>;

class InputPathsTest : public ::testing::Test {
 protected:
  // Creates dir_/name (and its folders) holding `text`; returns its path.
  std::string touch(const std::string& name, const std::string& text = "{}\n") {
    const std::string path = dir_.file(name);
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
    return path;
  }
  std::string p(const std::string& name) const { return dir_.file(name); }
  Paths expand(const Paths& entries, const Paths& globs = default_input_globs("jsonl")) {
    return expand_input_paths(entries, globs).paths;
  }

  sf::testing::TempDir dir_;
};

TEST_F(InputPathsTest, FilesKeepTheirWrittenOrder) {
  touch("b.jsonl");
  touch("a.jsonl");
  const InputFiles files = expand_input_paths({p("b.jsonl"), p("a.jsonl")}, {"*.jsonl"});
  EXPECT_EQ(files.paths, (Paths{p("b.jsonl"), p("a.jsonl")}));
  EXPECT_EQ(files.bytes, 6u);
  EXPECT_FALSE(files.expanded);
}

TEST_F(InputPathsTest, MissingFileIsLeftToTheReader) {
  EXPECT_EQ(expand({p("none.jsonl")}), Paths{p("none.jsonl")});
}

TEST_F(InputPathsTest, DirectoryRecursiveSortedAndFiltered) {
  touch("c/b.jsonl");
  touch("c/a.jsonl.zst");
  touch("c/nested/deeper/z.jsonl");
  touch("c/nested/a.ndjson");
  touch("c/README.md");
  touch("c/.hidden.jsonl");
  const InputFiles files = expand_input_paths({p("c")}, default_input_globs("jsonl"));
  EXPECT_EQ(files.paths, (Paths{p("c/a.jsonl.zst"), p("c/b.jsonl"), p("c/nested/a.ndjson"),
                                p("c/nested/deeper/z.jsonl")}));
  EXPECT_TRUE(files.expanded);
  // A trailing slash names the same files.
  EXPECT_EQ(expand({p("c/")}), files.paths);
}

TEST_F(InputPathsTest, InputGlobFilterWithExclusions) {
  touch("f/art", "%\n");
  touch("f/art.dat");
  touch("f/zippy", "%\n");
  fs::create_symlink("art", p("f/art.u8"));
  EXPECT_EQ(expand({p("f")}, default_input_globs("fortune")), (Paths{p("f/art"), p("f/zippy")}));
  EXPECT_EQ(expand({p("f")}, {"*.dat"}), Paths{p("f/art.dat")});
  EXPECT_EQ(expand({p("f")}, {"*", "!*.dat", "!z*", "!art"}), Paths{p("f/art.u8")});
  // art.u8 links to art: the same file, read once.
  EXPECT_EQ(expand({p("f")}, {"*", "!*.dat", "!z*"}), Paths{p("f/art")});
  EXPECT_TRUE(matches_input_globs("x.fvecs", default_input_globs("auto")));
  EXPECT_TRUE(matches_input_globs("x.jsonl.gz", default_input_globs("auto")));
  EXPECT_FALSE(matches_input_globs("x.fvecs", default_input_globs("jsonl")));
}

TEST_F(InputPathsTest, GlobPatterns) {
  touch("g/2.jsonl");
  touch("g/1.jsonl");
  touch("g/x.txt");
  touch("g/sub/3.jsonl");
  touch("g/sub/deep/4.jsonl");
  EXPECT_EQ(expand({p("g/*.jsonl")}), (Paths{p("g/1.jsonl"), p("g/2.jsonl")}));
  EXPECT_EQ(expand({p("g/?.jsonl")}), (Paths{p("g/1.jsonl"), p("g/2.jsonl")}));
  EXPECT_EQ(expand({p("g/[2].jsonl")}), Paths{p("g/2.jsonl")});
  // `**`: any number of directories, none included.
  EXPECT_EQ(expand({p("g/**/*.jsonl")}),
            (Paths{p("g/1.jsonl"), p("g/2.jsonl"), p("g/sub/3.jsonl"), p("g/sub/deep/4.jsonl")}));
  EXPECT_EQ(expand({p("g/**/deep/*.jsonl")}), Paths{p("g/sub/deep/4.jsonl")});
  EXPECT_EQ(expand({p("g/**")}).size(), 5u);
  // `*` stays within one directory; a directory it matches is read with input.glob.
  EXPECT_EQ(expand({p("g/s*")}), (Paths{p("g/sub/3.jsonl"), p("g/sub/deep/4.jsonl")}));
}

TEST_F(InputPathsTest, FileNamedTwiceIsReadOnce) {
  touch("d/a.jsonl");
  touch("d/b.jsonl");
  EXPECT_EQ(expand({p("d/b.jsonl"), p("d"), p("d/*.jsonl"), p("d/./a.jsonl")}),
            (Paths{p("d/b.jsonl"), p("d/a.jsonl")}));
}

TEST_F(InputPathsTest, SymlinkedDirectoryLoopIsNotEntered) {
  touch("l/a.jsonl");
  fs::create_directory_symlink(p("l"), p("l/loop"));
  EXPECT_EQ(expand({p("l")}), Paths{p("l/a.jsonl")});
  EXPECT_EQ(expand({p("l/**/*.jsonl")}), Paths{p("l/a.jsonl")});
}

TEST_F(InputPathsTest, NoMatchIsAnErrorNamingTheEntry) {
  touch("e/notes.txt");
  EXPECT_EQ(sf::testing::error_of<InputError>([&] { expand({p("e")}); }),
            p("e") +
                ": a directory with no file matching input.glob (*.jsonl, *.jsonl.gz, "
                "*.jsonl.zst, *.jsonl.zstd, *.ndjson)");
  EXPECT_EQ(sf::testing::error_of<InputError>([&] { expand({p("e/*.jsonl")}); }),
            p("e/*.jsonl") + ": matches no file");
  EXPECT_EQ(sf::testing::error_of<InputError>([&] { expand({p("none/**/*.jsonl")}); }),
            p("none/**/*.jsonl") + ": matches no file");
}

TEST_F(InputPathsTest, LoadConfigExpandsInputPaths) {
  touch("k/b.fvecs");
  touch("k/a.fvecs");
  touch("k/notes.txt");
  const std::string config =
      touch("job.yaml", "input:\n  paths: [" + p("k") + "]\noutput:\n  dir: out\n");
  const runtime::Config c = runtime::load_config(config);
  EXPECT_EQ(c.input.paths, (Paths{p("k/a.fvecs"), p("k/b.fvecs")}));
  // The run directory's config.yaml names the files.
  EXPECT_EQ(c.resolved["input"]["paths"].as<Paths>(), c.input.paths);
  EXPECT_EQ(runtime::load_config(config, {"input.glob=['b*']"}).input.paths, Paths{p("k/b.fvecs")});
  EXPECT_EQ(sf::testing::error_of<runtime::ConfigError>(
                [&] { runtime::load_config(config, {"input.paths=[" + p("k/*.jsonl") + "]"}); }),
            config + ": input.paths: " + p("k/*.jsonl") + ": matches no file");
}

}  // namespace
}  // namespace sf::io
