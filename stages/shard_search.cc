#include "stages/shard_search.h"

#include <faiss/IndexIVF.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cluster/bytes.h"
#include "stages/ivf_index.h"
#include "stages/list_scan.h"

namespace sf::stages {
namespace {

using cluster::Bytes;

// One query received by a serving rank.
struct Incoming {
  int source = 0;
  const char* vector = nullptr;  // d floats, into the received message (unaligned)
};

// The coarse search of n queries as FAISS computes it for a call of fewer than
// faiss::distance_compute_blas_threshold queries: a flat quantizer then scores each query with
// its reference loop (fvec_L2sqr / fvec_inner_product), the same bits for any batch, rank and
// thread count. A call of more queries would take a GEMM, whose rounding depends on the batch
// and on BLAS's threads; IVFPQ's distances add the coarse distance, so they would too.
void coarse_search(const faiss::Index& quantizer, int64_t n, const float* x, int p, float* dis,
                   faiss::Index::idx_t* lists) {
  const int64_t chunk = std::max(1, faiss::distance_compute_blas_threshold - 1);
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t m = std::min(chunk, n - i0);
    quantizer.search(m, x + i0 * quantizer.d, p, dis + i0 * p, lists + i0 * p);
  }
}

}  // namespace

int64_t budget_batch_queries(int64_t batch_queries, int dim, int k, int nprobe, int ranks,
                             uint64_t budget_bytes) {
  const int64_t batch = std::max<int64_t>(1, batch_queries);
  if (budget_bytes == 0) return batch;
  const auto per_query = static_cast<uint64_t>(
      int64_t{dim} * 4 + int64_t{nprobe} * (4 + 8 + 16) +
      int64_t{std::max(1, ranks)} * (int64_t{nprobe} * 16 + int64_t{k} * 12) * 2);
  const auto fits = static_cast<int64_t>(budget_bytes / 8 / std::max<uint64_t>(1, per_query));
  return std::max<int64_t>(1, std::min(batch, fits));
}

cluster::RowRange query_slice(int64_t nq, int shards, int rank, int ranks) {
  const int serving = std::min(shards, ranks);
  if (rank >= serving) return {nq, nq};
  return cluster::row_range(nq, rank, serving);
}

ShardSearchResult distributed_search(cluster::Comm& comm, const PartitionPlan& plan,
                                     const std::map<int, std::unique_ptr<faiss::Index>>& shards,
                                     const float* queries, int64_t nq,
                                     const ShardSearchOptions& options) {
  const int size = comm.size(), me = comm.rank();
  const int k = options.k;
  ShardSearchResult res;
  res.nq = nq;
  res.k = k;
  res.per_shard_codes_scanned.assign(plan.shards, 0);
  const cluster::RowRange slice = query_slice(nq, plan.shards, me, size);

  // This rank's view: one shard index for the quantizer and transforms, the lists it holds.
  const faiss::Index* front = nullptr;
  const faiss::IndexIVF* ivf = nullptr;
  std::vector<const faiss::IndexIVF*> list_holder;  // per shard id, local only
  cluster::run_local_phase(comm, "search: check shards", [&] {
    list_holder.assign(plan.shards, nullptr);
    for (int s = 0; s < plan.shards; ++s) {
      const bool mine = shard_rank(s, size) == me;
      auto it = shards.find(s);
      if (mine != (it != shards.end()))
        throw std::invalid_argument("search: rank " + std::to_string(me) +
                                    (mine ? " lacks" : " should not hold") + " shard " +
                                    std::to_string(s));
      if (!mine) continue;
      const faiss::IndexIVF* sivf = find_ivf(it->second.get());
      if (sivf == nullptr || static_cast<int>(sivf->nlist) != plan.nlist)
        throw std::invalid_argument("search: shard " + std::to_string(s) + " has " +
                                    (sivf ? std::to_string(sivf->nlist) : std::string("no")) +
                                    " lists, the plan " + std::to_string(plan.nlist));
      list_holder[s] = sivf;
      if (front == nullptr) {
        front = it->second.get();
        ivf = sivf;
      }
    }
    if (slice.size() > 0 && ivf == nullptr)
      throw std::logic_error("search: a query slice without a shard");
  });
  const bool ip = ivf != nullptr && ivf->metric_type == faiss::METRIC_INNER_PRODUCT;
  const int64_t batch = std::max<int64_t>(1, options.batch_queries);
  const int64_t rounds =
      static_cast<int64_t>(comm.max(static_cast<double>((slice.size() + batch - 1) / batch)));
  std::vector<float> out_dis(static_cast<size_t>(slice.size()) * k);
  std::vector<int64_t> out_ids(static_cast<size_t>(slice.size()) * k);
  int64_t shard_visits = 0;  // (query, shard) pairs routed from this rank

  comm.barrier();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t round = 0; round < rounds; ++round) {
    if (agree_to_stop(comm, "search", options.stop_requested)) throw StageStopped("search");
    const int64_t q0 = std::min(slice.size(), round * batch);
    const int64_t nb = std::min(slice.size(), q0 + batch) - q0;
    // 1. Coarse assignment of this rank's batch; route (query, list) pairs.
    std::vector<Bytes> send(size);
    std::vector<std::vector<int64_t>> sent(size);  // per destination: local query indices
    cluster::run_local_phase(comm, "search: route", [&] {
      if (nb == 0) return;
      const int p = static_cast<int>(std::min<int64_t>(options.nprobe, plan.nlist));
      // One query at a time: the transform's GEMM then has the same shape, and each query
      // the same bits, for any batch and rank count.
      std::vector<float> xq;
      xq.reserve(static_cast<size_t>(nb) * ivf->d);
      for (int64_t i = 0; i < nb; ++i) {
        const std::vector<float> one = to_ivf_space(*front, 1, queries + (q0 + i) * front->d);
        xq.insert(xq.end(), one.begin(), one.end());
      }
      std::vector<float> cdis(static_cast<size_t>(nb) * p);
      std::vector<faiss::Index::idx_t> clist(static_cast<size_t>(nb) * p);
      coarse_search(*ivf->quantizer, nb, xq.data(), p, cdis.data(), clist.data());
      const size_t dv = ivf->d;
      std::vector<std::vector<std::pair<int64_t, float>>> pairs(size);  // (list|shard<<32, dis)
      std::vector<int> touched;
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t qid = slice.begin + q0 + i;
        for (auto& v : pairs) v.clear();
        touched.clear();
        for (int t = 0; t < p; ++t) {
          const int64_t list = clist[i * p + t];
          if (list < 0) continue;
          const std::vector<int>& copies = plan.lists.at(list).shards;
          const int shard = copies[static_cast<size_t>(qid) % copies.size()];
          if (std::find(touched.begin(), touched.end(), shard) == touched.end()) {
            touched.push_back(shard);
            ++shard_visits;
          }
          pairs[shard_rank(shard, size)].push_back(
              {list | (int64_t{shard} << 32), cdis[i * p + t]});
        }
        for (int r = 0; r < size; ++r) {
          if (pairs[r].empty()) continue;
          cluster::ByteWriter b(send[r]);
          b.value<int64_t>(q0 + i);
          b.value<int32_t>(static_cast<int32_t>(pairs[r].size()));
          b.array(xq.data() + i * dv, dv);
          for (const auto& [key, dis] : pairs[r]) {
            b.value<int64_t>(key);
            b.value<float>(dis);
          }
          sent[r].push_back(i);
        }
      }
    });
    const std::vector<Bytes> received = comm.alltoallv(send);
    send.assign(size, Bytes{});

    // 2. Scan: queries grouped by list, each list once per group.
    std::vector<Bytes> reply(size);
    cluster::run_local_phase(comm, "search: scan", [&] {
      std::vector<Incoming> in;
      std::map<int64_t, std::pair<std::vector<int64_t>, std::vector<float>>> groups;  // by key
      for (int src = 0; src < size; ++src) {
        cluster::ByteReader r(received[src], "search: queries from rank " + std::to_string(src));
        while (!r.done()) {
          (void)r.value<int64_t>();
          const int npairs = r.value<int32_t>();
          const char* v = r.take(ivf->d, sizeof(float));
          const int64_t idx = static_cast<int64_t>(in.size());
          in.push_back({src, v});
          for (int t = 0; t < npairs; ++t) {
            const int64_t key = r.value<int64_t>();
            const float dis = r.value<float>();
            auto& g = groups[key];
            g.first.push_back(idx);
            g.second.push_back(dis);
          }
        }
      }
      if (in.empty()) return;
      std::vector<float> xin(in.size() * ivf->d);
      for (size_t i = 0; i < in.size(); ++i)
        std::memcpy(xin.data() + i * ivf->d, in[i].vector, ivf->d * sizeof(float));
      BatchScanner scanner(*ivf, k, static_cast<int64_t>(in.size()), xin.data());
      for (const auto& [key, group] : groups) {
        const int64_t list = key & 0xffffffffLL;
        const int shard = static_cast<int>(key >> 32);
        const faiss::IndexIVF* holder = list_holder.at(shard);
        if (holder == nullptr) throw std::logic_error("search: routed to a shard not held here");
        const int64_t before = scanner.codes_scanned();
        scanner.scan_list(*holder->invlists, list, group.first, group.second);
        res.per_shard_codes_scanned[shard] += scanner.codes_scanned() - before;
      }
      scanner.finish();
      for (size_t i = 0; i < in.size(); ++i) {
        cluster::ByteWriter b(reply[in[i].source]);
        b.array(scanner.distances(static_cast<int64_t>(i)), static_cast<size_t>(k));
        b.array(scanner.ids(static_cast<int64_t>(i)), static_cast<size_t>(k));
      }
    });
    const std::vector<Bytes> answers = comm.alltoallv(reply);

    // 3. Merge each query's partial top-k from the ranks it went to.
    cluster::run_local_phase(comm, "search: merge", [&] {
      std::vector<std::vector<const float*>> pdis(static_cast<size_t>(nb));
      std::vector<std::vector<const int64_t*>> pids(static_cast<size_t>(nb));
      for (int r = 0; r < size; ++r) {
        if (answers[r].size() != sent[r].size() * k * (sizeof(float) + sizeof(int64_t)))
          throw std::runtime_error("search: rank " + std::to_string(r) + " answered " +
                                   std::to_string(answers[r].size()) + " bytes");
        const char* p = answers[r].data();
        for (int64_t i : sent[r]) {
          pdis[i].push_back(reinterpret_cast<const float*>(p));
          p += k * sizeof(float);
          pids[i].push_back(reinterpret_cast<const int64_t*>(p));
          p += k * sizeof(int64_t);
        }
      }
      for (int64_t i = 0; i < nb; ++i)
        merge_topk(k, ip, pdis[i], pids[i], out_dis.data() + (q0 + i) * k,
                   out_ids.data() + (q0 + i) * k);
    });
  }

  // 4. Results to rank 0, in query order (slices ascend with the rank).
  Bytes mine;
  cluster::ByteWriter(mine).array(out_dis.data(), out_dis.size());
  cluster::ByteWriter(mine).array(out_ids.data(), out_ids.size());
  const std::vector<Bytes> all = comm.gather(mine, 0);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  res.seconds = comm.max(elapsed);
  comm.allreduce_sum(res.per_shard_codes_scanned.data(), res.per_shard_codes_scanned.size());
  for (int64_t c : res.per_shard_codes_scanned) res.codes_scanned += c;
  const double visits = static_cast<double>(comm.sum(shard_visits));
  res.shards_per_query = nq > 0 ? visits / static_cast<double>(nq) : 0;
  if (me == 0) {
    res.distances.resize(static_cast<size_t>(nq) * k);
    res.ids.resize(static_cast<size_t>(nq) * k);
    for (int r = 0; r < size; ++r) {
      const cluster::RowRange s = query_slice(nq, plan.shards, r, size);
      const size_t n = static_cast<size_t>(s.size()) * k;
      if (all[r].size() != n * (sizeof(float) + sizeof(int64_t)))
        throw std::runtime_error("search: rank " + std::to_string(r) + " sent a wrong result size");
      if (n == 0) continue;
      std::memcpy(res.distances.data() + s.begin * k, all[r].data(), n * sizeof(float));
      std::memcpy(res.ids.data() + s.begin * k, all[r].data() + n * sizeof(float),
                  n * sizeof(int64_t));
    }
  }
  return res;
}

}  // namespace sf::stages
