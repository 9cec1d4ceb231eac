// The hashed embedder's idf is computed across ranks: each rank fits on its own documents and
// every rank ends with the idf (and so the vectors) of a single-process fit on all of them.
#include <gtest/gtest.h>

#include <algorithm>

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
  // The fit over batches of 3 of each rank's documents (the embed stage's): the same idf.
  HashedEmbedder batched(96, 5);
  batched.fit_begin();
  for (size_t lo = 0; lo < mine.size(); lo += 3)
    batched.fit_batch(batch_of({mine.begin() + lo, mine.begin() + std::min(mine.size(), lo + 3)}));
  batched.fit_end(comm);
  if (batched.idf() != serial.idf()) problem += " the batched fit's idf differs";
  const std::string problems = sf::testing::problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(problems, "");
  }
  EXPECT_EQ(problem, "");
}

}  // namespace
}  // namespace sf::stages::embed
