// Quality of the hashed embedder on the Clough & Stevenson corpus of short answers
// (tests/data/clough, listed with their task and category in file_information.csv): 5
// tasks, each with an original Wikipedia text (orig) and answers in four categories (cut: copied,
// light / heavy: revised, non: written independently). For each `cut` and `light` answer: among the
// other texts of the same task (original + all other answers), is the nearest (cosine) the
// original? Texts are normalised as `run` does (dedup.* defaults); the idf is fitted on all 100
// texts. The missed cut answers are printed with their nearest text. bench/clough_embed_study.py
// explains the figures: 4 of the 19 cut answers share more text with another answer than with the
// original (they copied Wikipedia text outside the excerpt given as the original), so no measure of
// shared content can exceed 15/19 = 0.79, and the 0.9 cannot be met on this corpus.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "stages/dedup/text.h"
#include "stages/embed/hashed_embedder.h"
#include "tests/test_util.h"

namespace sf::stages::embed {
namespace {

struct CloughText {
  std::string file, task, category, text;
};

std::vector<CloughText> load_clough(const std::string& dir) {
  std::vector<CloughText> out;
  std::ifstream info(dir + "/file_information.csv");
  std::string line;
  std::getline(info, line);  // header: File,Task,Category
  while (std::getline(info, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::stringstream row(line);
    CloughText t;
    std::getline(row, t.file, ',');
    std::getline(row, t.task, ',');
    std::getline(row, t.category, ',');
    if (t.file.empty()) continue;
    std::ifstream in(dir + "/" + t.file, std::ios::binary);
    t.text.assign(std::istreambuf_iterator<char>(in), {});
    out.push_back(t);
  }
  return out;
}

TEST(HashedEmbedderQuality, CloughNearestIsTheOriginal) {
  const std::string dir = sf::testing::data_dir() + "/clough";
  ASSERT_TRUE(std::ifstream(dir + "/file_information.csv"))
      << dir << " not found (tests/data is in the repository)";
  std::vector<CloughText> texts = load_clough(dir);
  ASSERT_EQ(texts.size(), 100u);
  std::vector<std::string> normalised(texts.size());
  const dedup::NormaliseOptions norm;
  DocBatch batch;
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_FALSE(texts[i].text.empty()) << texts[i].file;
    dedup::normalise_text(texts[i].text, norm, normalised[i]);
    batch.texts.emplace_back(normalised[i]);
    batch.rows.push_back(static_cast<int64_t>(i));
  }
  HashedEmbedder embedder(256, 0);
  auto comm = cluster::make_serial_comm();
  embedder.fit(*comm, batch);
  // Per bucket: at dim 256 nearly every bucket is non-zero in every text, so nearly flat.
  const auto [idf_min, idf_max] = std::minmax_element(embedder.idf().begin(), embedder.idf().end());
  std::printf("clough, hashed dim 256: per-bucket idf %.3f .. %.3f\n", *idf_min, *idf_max);
  std::vector<float> v(texts.size() * 256);
  embedder.embed(batch, v.data());
  auto cosine = [&](size_t a, size_t b) {
    return std::inner_product(v.begin() + a * 256, v.begin() + (a + 1) * 256, v.begin() + b * 256,
                              0.0);
  };
  // Per category: answers whose nearest same-task text is the original (hit@1), whose 3
  // nearest include it (hit@3), and the mean cosine to the original.
  struct Tally {
    int answers = 0, hit1 = 0, hit3 = 0;
    double cosine_to_original = 0;
  };
  std::map<std::string, Tally> tally;
  for (size_t a = 0; a < texts.size(); ++a) {
    const std::string& cat = texts[a].category;
    if (cat == "orig") continue;
    std::vector<std::pair<double, size_t>> others;
    size_t original = a;
    for (size_t b = 0; b < texts.size(); ++b) {
      if (b == a || texts[b].task != texts[a].task) continue;
      others.emplace_back(cosine(a, b), b);
      if (texts[b].category == "orig") original = b;
    }
    ASSERT_NE(original, a) << "no original for task " << texts[a].task;
    std::sort(others.rbegin(), others.rend());
    Tally& t = tally[cat];
    ++t.answers;
    for (size_t r = 0; r < 3 && r < others.size(); ++r)
      if (others[r].second == original) (r == 0 ? t.hit1 : t.hit3) += 1;
    t.cosine_to_original += cosine(a, original);
    if (cat == "cut" && others[0].second != original)
      std::printf("  cut miss %s: nearest %s (%s) %.3f, original %.3f\n", texts[a].file.c_str(),
                  texts[others[0].second].file.c_str(),
                  texts[others[0].second].category.c_str(), others[0].first,
                  cosine(a, original));
  }
  for (auto& [cat, t] : tally) {
    t.hit3 += t.hit1;
    t.cosine_to_original /= t.answers;
    std::printf("clough, hashed dim 256: %-5s %2d answers: nearest is the original %.3f, original "
                "in the 3 nearest %.3f, mean cosine to the original %.3f\n",
                cat.c_str(), t.answers, static_cast<double>(t.hit1) / t.answers,
                static_cast<double>(t.hit3) / t.answers, t.cosine_to_original);
  }
  ASSERT_EQ(tally["cut"].answers, 19);
  ASSERT_EQ(tally["light"].answers, 19);
  // The target, hit@1 >= 0.9 for cut, is NOT met and cannot be on this corpus (see
  // the top and bench/RESULTS.md): besides the 4 answers that share more with another answer,
  // cosine ranks near-complete copies of the original (other answers) above it when both hold
  // what an answer copied, and a long original below short answers copying the same passage;
  // even exact word tf-idf cosine finds the original first for 5-6 of 19. What is asserted:
  // the embedding ranks copies closer to the original than independent answers, in the
  // order of the amount copied, and does not fall below the figures measured on 2026-11-27.
  EXPECT_GT(tally["cut"].cosine_to_original, tally["heavy"].cosine_to_original);
  EXPECT_GT(tally["light"].cosine_to_original, tally["heavy"].cosine_to_original);
  EXPECT_GT(tally["heavy"].cosine_to_original, tally["non"].cosine_to_original + 0.05);
  EXPECT_GE(tally["cut"].hit1, 5);
}

}  // namespace
}  // namespace sf::stages::embed
