// MPI tests of stages/shard_search.h and stages/partition.h at 1, 2 and 4 ranks: the
// distributed search over shards equals a search of the merged index at the same nprobe (ids
// up to distance ties, same recall), for Flat, PQ and SQ codes, L2 and inner product, shard
// counts that do and do not match the rank count, replicated lists and several rounds; and the
// build-time repartitioning gives the same index for any number of ranks.
#include <faiss/IndexIVF.h>
#include <faiss/utils/distances.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "io/index_file.h"
#include "io/vector_file.h"
#include "stages/batches.h"
#include "stages/ivf_index.h"
#include "stages/partition.h"
#include "stages/shard_search.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::stages {
namespace {

using sf::testing::world;

// A float's bits: equal bits, equal float (also -0 vs 0 and NaN are told apart).
uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

constexpr int kDim = 16;

// Rank 0 trains and fills the index; every rank receives it (and the empty trained one).
void shared_index(cluster::Comm& comm, const std::string& factory, bool ip,
                  const std::vector<float>& x, std::unique_ptr<faiss::Index>* full,
                  std::vector<char>* empty) {
  cluster::Bytes e, f;
  if (comm.rank() == 0) {
    std::unique_ptr<faiss::Index> index = make_ivf_index(kDim, factory, ip);
    const auto n = static_cast<int64_t>(x.size() / kDim);
    index->train(n, x.data());
    e = io::serialize_index(*index);
    std::vector<faiss::Index::idx_t> ids(n);
    std::iota(ids.begin(), ids.end(), 0);
    index->add_with_ids(n, x.data(), ids.data());
    f = io::serialize_index(*index);
  }
  comm.broadcast(e, 0);
  comm.broadcast(f, 0);
  *empty = e;
  *full = io::deserialize_index(f);
}

using Case = std::tuple<const char*, bool, int, int>;  // factory, inner product, shards, replicas

class DistributedSearch : public ::testing::TestWithParam<Case> {};

TEST_P(DistributedSearch, EqualsMergedIndexSearchAtTheSameNprobe) {
  omp_set_num_threads(1);
  cluster::Comm& comm = world();
  const auto [factory, ip, nshards, replicate] = GetParam();
  const int k = 10, nprobe = 4;
  const int64_t rows = 4000, nq = 300;
  const std::vector<float> x = sf::testing::gaussian_mixture(rows, kDim, 12, 71);
  std::vector<float> q = sf::testing::gaussian_mixture(nq, kDim, 12, 72);
  std::unique_ptr<faiss::Index> merged;
  std::vector<char> empty;
  shared_index(comm, factory, ip, x, &merged, &empty);

  // The plan from a workload of the first 100 queries, made on rank 0 and sent as JSON.
  cluster::Bytes plan_text;
  if (comm.rank() == 0) {
    Workload w;
    w.nq = 100;
    w.queries.assign(q.begin(), q.begin() + 100 * kDim);
    PartitionOptions o;
    o.shards = nshards;
    o.nprobe = nprobe;
    o.replicate_hot = replicate;
    const std::string text =
        plan_to_json(make_plan(*merged, &w, o, ScanCost::linear(1e-6, 1e-8))).dump();
    plan_text.assign(text.begin(), text.end());
  }
  comm.broadcast(plan_text, 0);
  const PartitionPlan plan =
      plan_from_json(nlohmann::json::parse(plan_text.begin(), plan_text.end()));

  // Each rank holds only its shards and its slice of the queries.
  std::map<int, std::unique_ptr<faiss::Index>> shards;
  for (int s = 0; s < plan.shards; ++s)
    if (shard_rank(s, comm.size()) == comm.rank())
      shards.emplace(s, io::deserialize_index(
                            io::serialize_index(*make_shard_index(*merged, empty, plan, s))));
  const cluster::RowRange slice = query_slice(nq, plan.shards, comm.rank(), comm.size());
  const std::vector<float> mine(q.begin() + slice.begin * kDim, q.begin() + slice.end * kDim);
  ShardSearchOptions opt;
  opt.k = k;
  opt.nprobe = nprobe;
  opt.batch_queries = 37;  // several rounds, uneven
  const ShardSearchResult got = distributed_search(comm, plan, shards, mine.data(), nq, opt);
  EXPECT_GT(got.seconds, 0.0);
  if (comm.rank() != 0) return;

  set_nprobe(merged.get(), nprobe);
  std::vector<float> ref_d(nq * k);
  std::vector<faiss::Index::idx_t> ref_i(nq * k);
  // FAISS's search of each query on its own, as distributed_search computes it: coarse
  // distances by FAISS's reference loop (a call of 20+ queries takes a GEMM, whose rounding
  // changes IVFPQ's distances in the last bits).
  for (int64_t i = 0; i < nq; ++i)
    merged->search(1, q.data() + i * kDim, k, ref_d.data() + i * k, ref_i.data() + i * k);
  ASSERT_EQ(got.ids.size(), ref_i.size());
  // Distances bit for bit; an id may differ only where its distance ties the k-th (which of
  // the rows at the k-th distance make the list depends on the scan order; nearer rows and
  // the order of ties within the list, by id, do not).
  int differing = 0;
  for (int64_t i = 0; i < nq * k; ++i) {
    ASSERT_EQ(float_bits(got.distances[i]), float_bits(ref_d[i]))
        << "query " << i / k << " rank " << i % k << ": " << got.distances[i] << " vs " << ref_d[i];
    if (got.ids[i] == ref_i[i]) continue;
    ++differing;
    const int64_t kth = (i / k) * k + k - 1;
    ASSERT_EQ(float_bits(ref_d[i]), float_bits(ref_d[kth]))
        << "query " << i / k << " rank " << i % k << ": id " << got.ids[i] << " vs " << ref_i[i]
        << " at distance " << ref_d[i] << ", not a tie at the k-th distance " << ref_d[kth];
  }
  // Ties aside, the ids are the same sets per query: recall against brute force is equal.
  const std::vector<int64_t> truth = sf::testing::brute_force(x, kDim, q, k, ip);
  auto recall = [&](const auto& ids) {
    int64_t hit = 0;
    for (int64_t i = 0; i < nq; ++i) {
      const std::set<int64_t> t(truth.begin() + i * k, truth.begin() + (i + 1) * k);
      for (int j = 0; j < k; ++j) hit += t.count(ids[i * k + j]);
    }
    return static_cast<double>(hit) / static_cast<double>(nq * k);
  };
  EXPECT_DOUBLE_EQ(recall(got.ids), recall(ref_i));
  EXPECT_LE(differing, 2 * k) << "more ties at the k-th distance than these data should have";
  // Codes scanned: the sizes of the probed lists, as the merged index's search counts them.
  const faiss::IndexIVF* ivf = find_ivf(merged.get());
  std::vector<float> cd(nq * nprobe);
  std::vector<faiss::Index::idx_t> cl(nq * nprobe);
  ivf->quantizer->search(nq, q.data(), nprobe, cd.data(), cl.data());
  int64_t codes = 0;
  for (auto l : cl) codes += static_cast<int64_t>(ivf->invlists->list_size(l));
  EXPECT_EQ(got.codes_scanned, codes);
  EXPECT_EQ(std::accumulate(got.per_shard_codes_scanned.begin(), got.per_shard_codes_scanned.end(),
                            int64_t{0}),
            codes);
  EXPECT_EQ(got.per_shard_codes_scanned.size(), static_cast<size_t>(nshards));
}

INSTANTIATE_TEST_SUITE_P(
    Codes, DistributedSearch,
    ::testing::Values(Case{"IVF32,Flat", false, 4, 0}, Case{"IVF32,Flat", false, 3, 2},
                      Case{"IVF32,Flat", true, 5, 0}, Case{"IVF32,PQ8x4np", false, 3, 1},
                      Case{"IVF32,SQ8", false, 2, 0}, Case{"IVF32,Flat", false, 1, 0}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name = std::get<0>(info.param);
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return name + (std::get<1>(info.param) ? "_ip" : "_l2") + "_shards" +
             std::to_string(std::get<2>(info.param)) + "_replicas" +
             std::to_string(std::get<3>(info.param));
    });

TEST(RepartitionListsMpi, SameIndexForAnyNumberOfRanks) {
  omp_set_num_threads(1);
  cluster::Comm& comm = world();
  const int64_t rows = 6000;
  const std::vector<float> x = sf::testing::plane_rows(rows, kDim, 81);
  sf::testing::SharedTempDir dir(comm);
  sf::testing::write_fvecs_on_rank0(comm, dir.file("x.fvecs"), x, rows, kDim);
  io::VectorCorpus corpus({dir.file("x.fvecs")}, io::VectorFormat::kFvecs);
  std::unique_ptr<faiss::Index> unused;
  std::vector<char> empty;
  shared_index(comm, "IVF32,Flat", false, x, &unused, &empty);
  // A workload concentrated in one region: rows near row 7.
  Workload w;
  w.nq = 300;
  for (int64_t i = 0; i < rows && w.nq * kDim > static_cast<int64_t>(w.queries.size()); ++i)
    if (faiss::fvec_L2sqr(&x[i * kDim], &x[7 * kDim], kDim) < 2.0f)
      w.queries.insert(w.queries.end(), x.begin() + i * kDim, x.begin() + (i + 1) * kDim);
  w.nq = static_cast<int64_t>(w.queries.size() / kDim);
  PartitionOptions o;
  o.shards = 4;
  o.nprobe = 4;
  o.scan_cost = {1e-6, 1e-8};
  o.batch_rows = 1024;
  auto index = io::deserialize_index(empty);
  const RepartitionReport rep =
      repartition_lists(comm, *index, corpus, rank_rows(rows, comm.rank(), comm.size()),
                        comm.rank() == 0 ? &w : nullptr, o);
  EXPECT_TRUE(rep.applied);
  EXPECT_EQ(rep.nlist_after, 32);
  if (comm.rank() != 0) return;
  EXPECT_GT(rep.splits, 0);
  EXPECT_GT(rep.recall_queries, 100);  // each rank's nearest rows merged on rank 0
  auto serial = cluster::make_serial_comm();
  auto one = io::deserialize_index(empty);
  repartition_lists(*serial, *one, corpus, {0, rows}, &w, o);
  EXPECT_EQ(io::serialize_index(*index), io::serialize_index(*one));
}

}  // namespace
}  // namespace sf::stages
