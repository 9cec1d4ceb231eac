// Unit tests for stages/train.h and stages/build.h on one rank: the trained index, add_shard
// over a row range (count, ids, order), and adding a corpus as several consecutive ranges
// (what the ranks of a job do) giving the same index as adding it as one range.
#include "stages/batches.h"
#include "stages/build.h"

#include <faiss/invlists/InvertedLists.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <cctype>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/index_file.h"
#include "io/vector_file.h"
#include "stages/ivf_index.h"
#include "stages/merge.h"
#include "stages/train.h"
#include "tests/test_util.h"

namespace sf::stages {
namespace {

constexpr int64_t kRows = 3000;
constexpr int kDim = 32;
constexpr int64_t kBatchRows = 256;

std::string factory_name(const ::testing::TestParamInfo<const char*>& info) {
  std::string name = info.param;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

class ShardBuild : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    omp_set_num_threads(1);
    const std::string path = dir_.file("base.fvecs");
    const std::vector<float> x = sf::testing::gaussian_mixture(kRows, kDim, 40, 17);
    io::write_fvecs(path, x.data(), kRows, kDim);
    corpus_ = std::make_unique<io::VectorCorpus>(std::vector<std::string>{path},
                                                 io::VectorFormat::kFvecs);
    options_.factory = GetParam();
    trained_ = io::serialize_index(
        *train_index(*comm_, *corpus_, stages::rank_rows(kRows, 0, 1), options_, &report_));
  }

  std::unique_ptr<faiss::Index> trained() const { return io::deserialize_index(trained_); }

  // The index after adding the corpus as the ranges of `ranks` ranks, one after another.
  std::vector<char> added_as_ranks(int ranks) const {
    auto index = trained();
    for (int r = 0; r < ranks; ++r)
      add_shard(*index, *corpus_, stages::rank_rows(kRows, r, ranks), kBatchRows);
    return io::serialize_index(*index);
  }

  sf::testing::TempDir dir_;
  std::unique_ptr<cluster::Comm> comm_ = cluster::make_serial_comm();
  std::unique_ptr<io::VectorCorpus> corpus_;
  TrainOptions options_;
  TrainReport report_;
  std::vector<char> trained_;
};

TEST_P(ShardBuild, TrainedIndexIsTrainedAndEmpty) {
  auto index = trained();
  EXPECT_TRUE(index->is_trained);
  EXPECT_EQ(index->ntotal, 0);
  EXPECT_EQ(index->d, kDim);
  const faiss::IndexIVF* ivf = find_ivf(index.get());
  ASSERT_NE(ivf, nullptr);
  EXPECT_EQ(static_cast<int>(ivf->nlist), report_.nlist);
  EXPECT_EQ(ivf->quantizer->ntotal, static_cast<faiss::Index::idx_t>(ivf->nlist));
  EXPECT_EQ(report_.sample_rows, std::min<int64_t>(kRows, int64_t{256} * report_.nlist));
  EXPECT_EQ(report_.local_sample_rows, report_.sample_rows);
  EXPECT_EQ(report_.index_bytes, trained_.size());
  // Training is deterministic: a second run gives the same bytes.
  EXPECT_TRUE(io::serialize_index(*train_index(*comm_, *corpus_, stages::rank_rows(kRows, 0, 1),
                                               options_)) == trained_);
}

TEST_P(ShardBuild, AddShardAddsItsRangeWithGlobalIdsSortedPerList) {
  auto index = trained();
  const cluster::RowRange range{1000, 2100};
  EXPECT_EQ(add_shard(*index, *corpus_, range, kBatchRows), range.size());
  EXPECT_EQ(index->ntotal, range.size());
  const faiss::InvertedLists& lists = *find_ivf(index.get())->invlists;
  std::vector<int> seen(static_cast<size_t>(kRows), 0);
  for (size_t l = 0; l < lists.nlist; ++l) {
    const size_t n = lists.list_size(l);
    if (n == 0) continue;
    faiss::InvertedLists::ScopedIds ids(&lists, l);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_GE(ids[i], range.begin) << "list " << l;
      ASSERT_LT(ids[i], range.end) << "list " << l;
      ++seen[static_cast<size_t>(ids[i])];
      if (i > 0) {
        EXPECT_LT(ids[i - 1], ids[i]) << "list " << l << " not sorted at " << i;
      }
    }
  }
  for (int64_t id = range.begin; id < range.end; ++id) EXPECT_EQ(seen[id], 1) << "id " << id;
}

// What the ranks of a job do, one after another: merge.h promises the same bytes for any
// number of ranks, so the ranges of any rank count must add up to the one-range index.
class ShardBuildRanges : public ShardBuild {};

TEST_P(ShardBuildRanges, AddingConsecutiveRangesEqualsAddingOneRange) {
  const std::vector<char> one = added_as_ranks(1);
  for (int ranks : {2, 3, 4, 7}) {
    EXPECT_TRUE(added_as_ranks(ranks) == one)
        << "the ranges of " << ranks << " ranks give another index than one range";
  }
}

// What the checkpointed add stage does (pipeline/add.cc): each piece added to an empty copy
// of the trained index, encoded as a shard (what it publishes), appended to the rank's index.
// The result must be the index a straight add gives: that keeps resumed builds identical.
TEST_P(ShardBuildRanges, PiecesEncodedAndAppendedEqualOneAdd) {
  const std::vector<char> one = added_as_ranks(1);
  for (int64_t piece_rows : {1024, 2048, 5000}) {
    auto index = trained();
    auto piece_index = trained();
    for (const cluster::RowRange piece : split_rows({0, kRows}, piece_rows)) {
      std::vector<float> x(static_cast<size_t>(piece.size()) * kDim);
      corpus_->read(piece.begin, piece.size(), x.data());
      add_rows(*piece_index, piece.begin, piece.size(), x.data());
      append_shard(*index, encode_shard(*piece_index));
      piece_index = trained();
    }
    EXPECT_TRUE(io::serialize_index(*index) == one) << "pieces of " << piece_rows << " rows";
  }
}

// Regression (issue 13): FAISS let OpenBLAS split the GEMMs of the PCA/OPQ training and of
// the transforms, coarse assignment and PQ encoding (dsub >= 16) over all threads, and a split
// GEMM rounds differently on OpenBLAS's Prescott, Haswell and Zen kernels: the trained index
// and the codes changed with the thread count. Train and add at 1 thread, then at 2 and 4:
// the same bytes. nlist 40 is not a multiple of the kernels' blocks.
TEST(ThreadInvariance, TrainedAndAddedBytesDoNotDependOnTheNumberOfThreads) {
  const int saved_threads = omp_get_max_threads();
  sf::testing::TempDir dir;
  auto comm = cluster::make_serial_comm();
  const int64_t rows = 5000;
  for (const char* factory : {"PCA16,IVF40,Flat", "PCA16,IVF40,SQ8", "IVF40,PQ8np"}) {
    const int d = std::string(factory).rfind("PCA", 0) == 0 ? 64 : 128;  // PQ8: dsub 16
    const std::string path = dir.file(std::to_string(d) + ".fvecs");
    const std::vector<float> x = sf::testing::gaussian_mixture(rows, d, 50, 29);
    io::write_fvecs(path, x.data(), rows, d);
    io::VectorCorpus corpus({path}, io::VectorFormat::kFvecs);
    TrainOptions options;
    options.factory = factory;
    options.codebook_sample = 2048;
    const auto build = [&](int threads) {
      omp_set_num_threads(threads);
      auto index = train_index(*comm, corpus, {0, rows}, options);
      const std::vector<char> trained = io::serialize_index(*index);
      add_shard(*index, corpus, {0, rows}, 4096);
      return std::make_pair(trained, io::serialize_index(*index));
    };
    const auto one = build(1);
    for (int threads : {2, 4}) {
      const auto many = build(threads);
      EXPECT_TRUE(many.first == one.first) << factory << ": trained index, " << threads << " threads";
      EXPECT_TRUE(many.second == one.second) << factory << ": filled index, " << threads << " threads";
      // The add alone, on the one-thread trained index.
      omp_set_num_threads(threads);
      auto index = io::deserialize_index(one.first);
      add_shard(*index, corpus, {0, rows}, 4096);
      EXPECT_TRUE(io::serialize_index(*index) == one.second)
          << factory << ": add only, " << threads << " threads";
    }
  }
  omp_set_num_threads(saved_threads);
}

TEST(SplitRows, CutsAtGlobalMultiplesRoundedToBlocks) {
  using R = cluster::RowRange;
  auto same = [](const std::vector<R>& a, const std::vector<R>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].begin != b[i].begin || a[i].end != b[i].end) return false;
    return true;
  };
  EXPECT_TRUE(split_rows({0, 0}, 1024).empty());
  EXPECT_TRUE(same(split_rows({0, 2500}, 1024), {{0, 1024}, {1024, 2048}, {2048, 2500}}));
  // 1500 rounds up to 2048; a range starting mid-unit is cut at the next global multiple.
  EXPECT_TRUE(same(split_rows({1024, 5000}, 1500), {{1024, 2048}, {2048, 4096}, {4096, 5000}}));
  EXPECT_TRUE(same(split_rows({3072, 4000}, 1), {{3072, 4000}}));
}

const char* const kFactories[] = {"IVF32,Flat", "IVF32,PQ8np", "IVF16,SQ8", "IVF16_HNSW32,Flat",
                                  "PCA16,IVF16,Flat"};
const char* const kRangeStableFactories[] = {"IVF32,Flat", "IVF32,PQ8np", "IVF16,SQ8",
                                             "IVF16_HNSW32,Flat"};
// Bug (see the final report): with a vector transform, the rows at a range edge are
// transformed in a smaller batch, and the BLAS product differs in its last bits.
const char* const kPreTransformFactories[] = {"PCA16,IVF16,Flat"};

INSTANTIATE_TEST_SUITE_P(Build, ShardBuild, ::testing::ValuesIn(kFactories), factory_name);
INSTANTIATE_TEST_SUITE_P(Build, ShardBuildRanges, ::testing::ValuesIn(kRangeStableFactories),
                         factory_name);
INSTANTIATE_TEST_SUITE_P(PreTransform, ShardBuildRanges,
                         ::testing::ValuesIn(kPreTransformFactories), factory_name);

}  // namespace
}  // namespace sf::stages
