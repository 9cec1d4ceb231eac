// Typed values as cluster::Bytes, through Boost.Serialization's binary archives: the state a
// stage writes once and reads back (checkpoints) and the structured messages ranks exchange.
// A type is serialisable when it has `template <class Ar> void serialize(Ar&, unsigned
// version)` (or a free one found by ADL), and std containers when their Boost header is
// included (boost/serialization/vector.hpp, string.hpp, utility.hpp, map.hpp, ...). Give a
// type written to files BOOST_CLASS_VERSION, and in its serialize() read older versions or
// refuse them with check_version() (Boost itself reads a newer version as if it were this
// build's: check_version() refuses it).
//
// Portability: binary archives hold this host's byte order and type sizes. That is all we
// need: messages go between ranks of one binary, and checkpoints are read back by the same
// build on the same kind of machine. The archive header records the sizes and byte order, so
// a file from another machine type is refused, not misread.
//
// Bulk arrays (vectors, codes, signatures on a hot shuffle path) stay raw: exchange() and
// redistribute_rows() in cluster/comm.h, or the array container (io/array_file.h) in files.
// No MPI: header-only, usable from every folder that may include cluster/.
#pragma once

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/version.hpp>
#include <boost/serialization/vector.hpp>

#include <exception>
#include <istream>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

#include "cluster/comm.h"

namespace sf::cluster {

// A value written in a format version this build does not read (older, where serialize()
// refuses it, or newer). Its message names `what` and says which.
class ArchiveVersionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// In T::serialize(ar, version) when loading: refuses (ArchiveVersionError) a `version` older
// than `oldest` or newer than T's BOOST_CLASS_VERSION, naming both (from_bytes adds `what`).
template <class T>
void check_version(unsigned version, unsigned oldest) {
  const unsigned current = boost::serialization::version<T>::value;
  if (version >= oldest && version <= current) return;
  throw ArchiveVersionError("format version " + std::to_string(version) +
                            ", written by " + (version > current ? "a newer" : "an older") +
                            " shardforge; this build reads version" +
                            (oldest == current ? " " + std::to_string(current)
                                               : "s " + std::to_string(oldest) + " to " +
                                                     std::to_string(current)));
}

namespace detail {

// Appends what the archive writes to a Bytes (no intermediate string).
class BytesOutBuf : public std::streambuf {
 public:
  explicit BytesOutBuf(Bytes& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.insert(out_.end(), s, s + n);
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) out_.push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }

 private:
  Bytes& out_;
};

// Reads a Bytes in place.
class BytesInBuf : public std::streambuf {
 public:
  explicit BytesInBuf(const Bytes& in) {
    char* begin = const_cast<char*>(in.data());  // get area only: never written
    setg(begin, begin, begin + in.size());
  }
  size_t consumed() const { return static_cast<size_t>(gptr() - eback()); }
};

}  // namespace detail

// The archive of `value` (with Boost's header: its library version, this host's type sizes
// and byte order).
template <class T>
Bytes to_bytes(const T& value) {
  Bytes out;
  detail::BytesOutBuf buf(out);
  {
    boost::archive::binary_oarchive ar(buf);
    ar << value;
  }
  return out;
}

// Reads back what to_bytes wrote. Throws ArchiveVersionError "<what>: ..." (a version this
// build does not read: check_version, or an archive of a newer Boost) or std::runtime_error
// "<what>: unreadable: ..." (a truncated or damaged archive, or bytes left over). REQUIRES: bytes whose integrity is known (a message from a rank, or a file
// under a checksum): a damaged length inside may ask for a large allocation before it fails.
template <class T>
T from_bytes(const Bytes& bytes, const std::string& what);

// from_bytes into an existing `value` (e.g. a view whose serialize() fills another object).
template <class T>
void from_bytes_into(const Bytes& bytes, T& value, const std::string& what) {
  detail::BytesInBuf buf(bytes);
  try {
    boost::archive::binary_iarchive ar(buf);
    ar >> value;
  } catch (const ArchiveVersionError& e) {
    throw ArchiveVersionError(what + ": " + e.what());
  } catch (const boost::archive::archive_exception& e) {
    if (e.code == boost::archive::archive_exception::unsupported_version)
      throw ArchiveVersionError(what + ": written by a newer Boost.Serialization (" +
                                e.what() + ")");
    throw std::runtime_error(what + ": unreadable: " + e.what());
  } catch (const std::exception& e) {  // e.g. a damaged length: std::length_error
    throw std::runtime_error(what + ": unreadable: " + e.what());
  }
  if (buf.consumed() != bytes.size())
    throw std::runtime_error(what + ": unreadable: " + std::to_string(bytes.size() - buf.consumed()) +
                             " byte(s) after the value");
}

template <class T>
T from_bytes(const Bytes& bytes, const std::string& what) {
  T value;
  from_bytes_into(bytes, value, what);
  return value;
}

// ---- typed collectives over Comm's byte collectives ----------------------------------------

// Collective: every rank's `mine`, indexed by rank.
template <class T>
std::vector<T> allgather_as(Comm& comm, const T& mine, const std::string& what) {
  std::vector<Bytes> all = comm.allgather(to_bytes(mine));
  std::vector<T> out;
  out.reserve(all.size());
  for (size_t r = 0; r < all.size(); ++r)
    out.push_back(from_bytes<T>(all[r], what + " from rank " + std::to_string(r)));
  return out;
}

// Collective: `value` of rank `root` on every rank.
template <class T>
T broadcast_as(Comm& comm, const T& value, int root, const std::string& what) {
  Bytes bytes;
  if (comm.rank() == root) bytes = to_bytes(value);
  comm.broadcast(bytes, root);
  return comm.rank() == root ? value : from_bytes<T>(bytes, what);
}

// Collective: outgoing[d] (one message, e.g. a std::vector of records) goes to rank d;
// returns the message each rank sent here, indexed by source. REQUIRES: outgoing.size() ==
// comm.size().
template <class T>
std::vector<T> alltoallv_as(Comm& comm, const std::vector<T>& outgoing, const std::string& what) {
  std::vector<Bytes> send;
  send.reserve(outgoing.size());
  for (const T& message : outgoing) send.push_back(to_bytes(message));
  std::vector<Bytes> received = comm.alltoallv(send);
  send.clear();
  std::vector<T> out;
  out.reserve(received.size());
  for (size_t s = 0; s < received.size(); ++s) {
    out.push_back(from_bytes<T>(received[s], what + " from rank " + std::to_string(s)));
    Bytes().swap(received[s]);
  }
  return out;
}

}  // namespace sf::cluster
