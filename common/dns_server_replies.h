// DnsServerReplies: what each DNS server did with a question that failed, so that the
// lookup's error can name them: "127.0.0.1:8600 answered SERVFAIL", "10.0.0.2:53
// unreachable: Connection refused".
//
// Why: c-ares 1.18 moves on to the next server after a SERVFAIL, REFUSED or NOTIMP answer
// and after a socket error, and once none is left reports one status for all of them
// (ECONNREFUSED, "Could not contact DNS servers"). A DNS server that is down, one that
// refuses to recurse for us and one whose upstream fails need different fixes. c-ares does
// its socket calls through the functions given here (ares_set_socket_functions), which
// make the same calls it would make and note what they see on the way.
// Not thread-safe: used on the resolver's loop thread, from inside c-ares's calls.
#pragma once

#include <ares.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "common/socket_address.h"

namespace connectable {

class DnsServerReplies {
 public:
  // The servers in the order c-ares asks them; those it never heard from are named as
  // silent. Set once the channel's servers are known.
  void setServers(std::vector<SocketAddress> servers) { servers_ = std::move(servers); }
  // Makes the channel's sockets through this object. REQUIRES: it outlives the channel.
  void install(ares_channel channel);

  // What the servers did with the question sent with DNS id `id` at `sentAt`, one clause
  // per server ("127.0.0.1:53 answered REFUSED; [::1]:53 did not answer"); empty when no
  // server answered with an error or failed at the socket since then (all silent: the
  // caller's timeout says it better).
  std::string describe(uint16_t id, Clock::time_point sentAt) const;
  // The question ended: its replies are no longer needed, and later ones are not kept.
  void forget(uint16_t id);

  // For tests: a UDP question sent (its DNS id is asked until forget()), what a UDP datagram
  // received from `server` tells (an error answer to a question asked is noted under its DNS
  // id), and a socket error seen talking to `server`.
  void noteQuestionSent(const unsigned char* data, size_t length);
  void noteDatagram(const SocketAddress& server, const unsigned char* data, size_t length);
  void noteSocketError(const SocketAddress& server, int error, Clock::time_point when);

 private:
  struct ErrorAnswer {
    SocketAddress server;
    uint8_t rcode;
  };
  struct SocketError {
    int error;
    Clock::time_point when;
  };
  struct Socket {
    bool udp = false;
    SocketAddress server;  // once connected
  };

  static ares_socket_t openSocket(int family, int type, int protocol, void* self);
  static int closeSocket(ares_socket_t fd, void* self);
  static int connectSocket(ares_socket_t fd, const sockaddr* address, ares_socklen_t length, void* self);
  static ares_ssize_t receive(ares_socket_t fd, void* buffer, size_t length, int flags, sockaddr* from,
                              ares_socklen_t* fromLength, void* self);
  static ares_ssize_t sendVector(ares_socket_t fd, const iovec* parts, int count, void* self);
  void noteCallFailed(int fd, int error);

  std::vector<SocketAddress> servers_;
  std::map<int, Socket> sockets_;
  // DNS ids of the questions sent over UDP until forget(): only these get error answers
  // kept, so one that comes after its question ended (from a server c-ares gave up on) or
  // to no question at all is not kept for ever, nor blamed on a later question of its id.
  std::set<uint16_t> asked_;
  std::map<uint16_t, std::vector<ErrorAnswer>> errorAnswers_;  // by DNS id, until forget(); one per server
  std::map<SocketAddress, SocketError> socketErrors_;           // the last one per server
};

}  // namespace connectable
