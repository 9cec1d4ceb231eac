// The hashed embedder's idf is computed across ranks: each rank fits on its own documents and
// every rank ends with the idf (and so the vectors) of a single-process fit on all of them.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "stages/embed/hashed_embedder.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::stages::embed {
namespace {

std::vector<std::string> corpus() {
  std::vector<std::string> texts;
  for (int i = 0; i < 37; ++i) {
    std::string text = "document " + std::to_string(i) + " shares the words alpha beta";
    for (int j = 0; j < i % 5; ++j) text += " rare" + std::to_string(i % 7);
    texts.push_back(text);
  }
  return texts;
}

TEST(EmbedMpi, IdfAndVectorsEqualASingleProcessFit) {
  cluster::Comm& comm = sf::testing::world();
  const std::vector<std::string> texts = corpus();
  std::vector<std::string_view> all(texts.begin(), texts.end());
  // Uneven split: rank r takes every size-th text from r (rank 0 of 4 gets 10, rank 3 gets 9).
  std::vector<std::string_view> mine;
  for (size_t i = comm.rank(); i < all.size(); i += comm.size()) mine.push_back(all[i]);

  auto batch_of = [](const std::vector<std::string_view>& texts) {
    DocBatch batch;
    batch.texts = texts;
    batch.rows.resize(texts.size());
    return batch;
  };
  HashedEmbedder distributed(96, 5);
  distributed.fit(comm, batch_of(mine));
  auto serial_comm = cluster::make_serial_comm();
  HashedEmbedder serial(96, 5);
  serial.fit(*serial_comm, batch_of(all));

  std::string problem;
  if (distributed.idf() != serial.idf()) problem = "idf differs from the single-process fit";
  std::vector<float> a(mine.size() * 96), b(mine.size() * 96);
  distributed.embed(batch_of(mine), a.data());
  serial.embed(batch_of(mine), b.data());
  if (a != b) problem += " vectors differ";
  // One pass (fit_embed), embedding every other local document: the same idf and rows.
  HashedEmbedder one_pass(96, 5);
  std::vector<int64_t> selected;
  std::vector<std::string_view> chosen;
  for (size_t i = 0; i < mine.size(); i += 2) {
    selected.push_back(static_cast<int64_t>(i));
    chosen.push_back(mine[i]);
  }
  const std::vector<float> got = one_pass.fit_embed(comm, batch_of(mine), selected, 3);
  std::vector<float> want(chosen.size() * 96);
  serial.embed(batch_of(chosen), want.data());
  if (one_pass.idf() != serial.idf()) problem += " fit_embed's idf differs";
  if (got != want) problem += " fit_embed's vectors differ";
  const std::string problems = sf::testing::problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(problems, "");
  }
  EXPECT_EQ(problem, "");
}

}  // namespace
}  // namespace sf::stages::embed
