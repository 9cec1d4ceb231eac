// Unit tests for stages/train.h on one rank: factory strings the corpus cannot train
// (training_misfit, and train_index stopping with the factory and the shape), and FAISS's
// small-sample warning said once through TrainOptions::warn instead of once per clustering.
#include "stages/train.h"

#include <faiss/VectorTransform.h>
#include <faiss/impl/ProductQuantizer.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "io/index_file.h"
#include "io/vector_file.h"
#include "stages/batches.h"
#include "stages/ivf_index.h"
#include "tests/test_util.h"

namespace sf::stages {
namespace {

std::string misfit(const std::string& factory, int64_t rows, int d,
                   const TrainOptions& options = {}) {
  return training_misfit(*make_ivf_index(d, factory, false), rows, options);
}

TEST(TrainingMisfit, FactoriesTheCorpusCanTrainHaveNone) {
  EXPECT_EQ(misfit("IVF16,Flat", 1000, 32), "");
  EXPECT_EQ(misfit("PCA16,IVF4,Flat", 1000, 32), "");
  EXPECT_EQ(misfit("IVF2,PQ8", 256, 32), "");
  EXPECT_EQ(misfit("OPQ8,IVF2,PQ8np", 300, 32), "");
  EXPECT_EQ(misfit("IVF4,SQ8", 10, 32), "");
}

TEST(TrainingMisfit, NoLists) {
  EXPECT_NE(misfit("IVF0,Flat", 1000, 32).find("0 lists"), std::string::npos);
}

TEST(TrainingMisfit, PcaToMoreDimensionsThanTheData) {
  EXPECT_NE(misfit("PCA64,IVF16,Flat", 1000, 32).find("from 32 to 64 dimensions"),
            std::string::npos);
}

TEST(TrainingMisfit, CodebooksOfMoreCentroidsThanRows) {
  EXPECT_NE(misfit("IVF2,PQ8", 100, 32).find("256 centroids on a codebook sample of 100 rows"),
            std::string::npos);
  EXPECT_NE(misfit("IVF2,PQ8np", 255, 32).find("256 centroids"), std::string::npos);
  EXPECT_NE(misfit("OPQ8,IVF2,PQ8np", 100, 32).find("OPQ"), std::string::npos);
  // The codebook sample, not the corpus, is what is too small.
  TrainOptions small;
  small.codebook_sample = 200;
  const std::string why = misfit("IVF2,PQ8", 5000, 32, small);
  EXPECT_NE(why.find("200 rows"), std::string::npos) << why;
  EXPECT_NE(why.find("index.codebook_sample"), std::string::npos) << why;
}

class TrainOnOneRank : public ::testing::Test {
 protected:
  void SetUp() override { omp_set_num_threads(1); }

  // train_index over `rows` x `d` rows of a gaussian mixture; FAISS's stderr in `stderr_out`.
  std::unique_ptr<faiss::Index> train(const std::string& factory, int64_t rows, int d,
                                      TrainOptions options, std::string* stderr_out) {
    x_ = sf::testing::gaussian_mixture(rows, d, 20, 31);
    std::vector<std::unique_ptr<io::VectorFile>> files;
    files.push_back(io::make_memory_view("x", rows, d, 0, x_.data(), rows));
    io::VectorCorpus corpus(std::move(files));
    options.factory = factory;
    ::testing::internal::CaptureStderr();
    std::unique_ptr<faiss::Index> index;
    try {
      index = train_index(*comm_, corpus, rank_rows(rows, 0, 1), options);
    } catch (...) {
      *stderr_out = ::testing::internal::GetCapturedStderr();
      throw;
    }
    *stderr_out = ::testing::internal::GetCapturedStderr();
    return index;
  }

  std::unique_ptr<cluster::Comm> comm_ = cluster::make_serial_comm();
  std::vector<float> x_;
};

// Regression (issue 12): FAISS printed "WARNING clustering 1000 points to 256 centroids:
// please provide at least 9984 training points" once per PQ sub-quantizer and, for OPQ, once
// per sub-quantizer per iteration (2 x 50 + 2 = 102 lines here).
TEST_F(TrainOnOneRank, SmallCodebookSampleIsSaidOnceNotByFaiss) {
  for (const char* factory : {"OPQ2,IVF4,PQ2np", "IVF4,PQ2"}) {
    std::vector<std::string> warnings;
    TrainOptions options;
    options.warn = [&](const std::string& m) { warnings.push_back(m); };
    std::string faiss_said;
    train(factory, 1000, 8, options, &faiss_said);
    EXPECT_EQ(faiss_said.find("please provide"), std::string::npos)
        << factory << ": " << faiss_said;
    ASSERT_EQ(warnings.size(), 1u) << factory;
    EXPECT_NE(warnings[0].find("1000 points for 256 centroids, FAISS recommends at least 9984"),
              std::string::npos)
        << warnings[0];
  }
}

// What train.cc relies on: FAISS 1.7.3 reads min_points_per_centroid only for its warning, so
// an OPQ trained with a PQ whose warning is off (what train_transforms passes) and a PQ
// trained so equal FAISS's defaults bit for bit.
TEST(FaissSmallSampleWarning, TurningItOffChangesNoTrainedValue) {
  const int d = 16;
  const int64_t n = 1500;
  const std::vector<float> x = sf::testing::gaussian_mixture(n, d, 20, 37);
  faiss::OPQMatrix plain(d, 4), quiet(d, 4);
  plain.niter = quiet.niter = 3;
  faiss::ProductQuantizer quiet_pq(d, 4, 8);
  quiet_pq.cp.min_points_per_centroid = 0;
  quiet.pq = &quiet_pq;
  ::testing::internal::CaptureStderr();
  plain.train(n, x.data());
  const std::string plain_said = ::testing::internal::GetCapturedStderr();
  ::testing::internal::CaptureStderr();
  quiet.train(n, x.data());
  const std::string quiet_said = ::testing::internal::GetCapturedStderr();
  quiet.pq = nullptr;
  EXPECT_NE(plain_said.find("please provide"), std::string::npos) << "FAISS no longer warns";
  EXPECT_EQ(quiet_said.find("please provide"), std::string::npos) << quiet_said;
  EXPECT_EQ(plain.A, quiet.A);

  faiss::ProductQuantizer pq(d, 4, 8), pq_quiet(d, 4, 8);
  pq_quiet.cp.min_points_per_centroid = 0;
  ::testing::internal::CaptureStderr();
  pq.train(n, x.data());
  pq_quiet.train(n, x.data());
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(pq.centroids, pq_quiet.centroids);
}

TEST_F(TrainOnOneRank, MisfitStopsWithTheFactoryAndTheShape) {
  std::string ignored;
  try {
    train("PCA64,IVF16,Flat", 1000, 32, {}, &ignored);
    FAIL() << "trained";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("index.factory 'PCA64,IVF16,Flat'"), std::string::npos) << what;
    EXPECT_NE(what.find("1000 rows x 32 dims"), std::string::npos) << what;
  }
  try {
    train("IVF0,Flat", 1000, 32, {}, &ignored);
    FAIL() << "trained";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("0 lists"), std::string::npos) << e.what();
  }
}

// What train_index needs per rank (issue 15): the sample's share, the k-means buffers, and on
// rank 0 the codebook sample when the factory has codebooks.
TEST(TrainNeeds, GrowsWithTheSampleAndCountsTheCodebookSample) {
  TrainOptions options;
  const auto flat = make_ivf_index(32, "IVF64,Flat", false);
  const TrainNeeds small = train_needs(*flat, 1000000, 32, 2, 1, options);
  EXPECT_EQ(small.sample_rows, 256 * 64);  // FAISS's 256 per list
  EXPECT_EQ(small.local_rows, 8192);       // whole blocks of 1024 at 2 ranks
  EXPECT_EQ(small.codebook_rows, 0);       // Flat: no codebooks
  options.train_size = 400000;
  const TrainNeeds big = train_needs(*flat, 1000000, 32, 2, 1, options);
  EXPECT_EQ(big.sample_rows, 400000);
  // The share twice (read, moved) at least: 200,000 rows x 32 floats.
  EXPECT_GE(big.bytes, 2u * 200000 * 32 * 4);
  EXPECT_GT(big.bytes, small.bytes);
  // More ranks: a smaller share per rank.
  EXPECT_LT(train_needs(*flat, 1000000, 32, 4, 1, options).bytes, big.bytes);
  // One rank keeps the rows it read: the sample once (400,000 x 32 floats), not twice.
  const TrainNeeds one = train_needs(*flat, 1000000, 32, 1, 1, options);
  EXPECT_GE(one.bytes, 400000u * 32 * 4);
  EXPECT_LT(one.bytes, 2u * 400000 * 32 * 4);
  // A sample capped by the corpus.
  EXPECT_EQ(train_needs(*flat, 100000, 32, 2, 1, options).sample_rows, 100000);
  const auto pq = make_ivf_index(32, "IVF64,PQ8np", false);
  const TrainNeeds with_codebooks = train_needs(*pq, 1000000, 32, 2, 1, options);
  EXPECT_EQ(with_codebooks.codebook_rows, 65536);
  EXPECT_GE(with_codebooks.bytes, big.bytes + 65536u * 32 * 4);
}

}  // namespace
}  // namespace sf::stages
