// kernel-relay: a relay with no user-space work per message, for bench/run --kernel-relay.
//
// Each accepted connection and its upstream join a BPF sockmap, and an SK_SKB
// stream-verdict program hands every arriving packet to the other socket inside the
// kernel (the psock worker queues it on the peer). No proxy process wakes up per message,
// makes a system call for it or copies it. It answers the question: how far ahead of a
// user-space proxy can any relay get on this machine, once the proxy's own work is gone?
//
// It is a measuring instrument, not a proxy to run: its queues have no bound it controls,
// it learns that bytes have left only by polling TCP_INFO before passing a FIN on, and it
// needs CAP_BPF/CAP_NET_ADMIN for its whole life. docs/benchmarks.md says why the shim
// does not work this way.
//
// Usage: kernel-relay LISTEN_PORT=UPSTREAM_PORT [...]   (both on 127.0.0.1; root)
// Build: cc -O2 -Wall -Wextra -o kernel-relay kernel-relay.c

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { kMaxFd = 65536, kMaxRoutes = 16 };

struct Side {
    int peer;          // the other socket of the pair; -1 when this slot is unused
    int connected;     // we connect()ed this one: its bytes_acked counts the SYN
    int readClosed;    // this side's FIN arrived
    int writeClosed;   // we passed the FIN on (shutdown of this socket's write side)
    uint64_t cookie;
};

static struct Side sides[kMaxFd];
static int sockmapFd, cookieFd, epollFd, highestFd;
static long failures;

static long bpfCall(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof *attr); }

static int mapCreate(enum bpf_map_type type, unsigned keySize, unsigned valueSize) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = type;
    a.key_size = keySize;
    a.value_size = valueSize;
    a.max_entries = kMaxFd;
    return (int)bpfCall(BPF_MAP_CREATE, &a);
}

static int mapUpdate(int map, const void *key, const void *value) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = map;
    a.key = (uintptr_t)key;
    a.value = (uintptr_t)value;
    return (int)bpfCall(BPF_MAP_UPDATE_ELEM, &a);
}

static void mapDelete(int map, const void *key) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = map;
    a.key = (uintptr_t)key;
    bpfCall(BPF_MAP_DELETE_ELEM, &a);
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

// The verdict program, by hand (no clang/libbpf needed):
//   if (skb->len == 0) return SK_PASS;             // a bare FIN: user space passes it on
//   u64 cookie = bpf_get_socket_cookie(skb);
//   u32 *peer = bpf_map_lookup_elem(&cookies, &cookie);
//   if (!peer) return SK_PASS;                     // not (yet) paired
//   return bpf_sk_redirect_map(skb, &sockmap, *peer, 0);   // to the peer's send queue
static int loadVerdictProgram(void) {
    struct bpf_insn prog[] = {
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),                // r6 = skb
        INSN(BPF_LDX | BPF_MEM | BPF_W, 7, 1, 0, 0),                  // r7 = skb->len
        INSN(BPF_JMP | BPF_JEQ | BPF_K, 7, 0, 15, 0),                 // len == 0 -> pass
        INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),
        INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 0, -8, 0),               // *(fp - 8) = cookie
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
        INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -8),               // r2 = fp - 8
        INSN(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, cookieFd), INSN(0, 0, 0, 0, 0),
        INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
        INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 7, 0),                  // no entry -> pass
        INSN(BPF_LDX | BPF_MEM | BPF_W, 3, 0, 0, 0),                  // r3 = peer slot
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),
        INSN(BPF_LD | BPF_DW | BPF_IMM, 2, BPF_PSEUDO_MAP_FD, 0, sockmapFd), INSN(0, 0, 0, 0, 0),
        INSN(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0),
        INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_map),
        INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, SK_PASS),
        INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    };
    static char verifierLog[16384];
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_SK_SKB;
    a.insns = (uintptr_t)prog;
    a.insn_cnt = sizeof prog / sizeof prog[0];
    a.license = (uintptr_t) "GPL";
    a.log_buf = (uintptr_t)verifierLog;
    a.log_size = sizeof verifierLog;
    a.log_level = 1;
    int fd = (int)bpfCall(BPF_PROG_LOAD, &a);
    if (fd < 0) {
        fprintf(stderr, "kernel-relay: loading the verdict program: %s\n%s\n", strerror(errno), verifierLog);
        exit(1);
    }
    return fd;
}

static void setUpBpf(void) {
    sockmapFd = mapCreate(BPF_MAP_TYPE_SOCKMAP, 4, 4);
    cookieFd = mapCreate(BPF_MAP_TYPE_HASH, 8, 4);
    if (sockmapFd < 0 || cookieFd < 0) {
        fprintf(stderr, "kernel-relay: creating the maps: %s (root needed)\n", strerror(errno));
        exit(1);
    }
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.target_fd = sockmapFd;
    a.attach_bpf_fd = loadVerdictProgram();
    a.attach_type = BPF_SK_SKB_STREAM_VERDICT;
    if (bpfCall(BPF_PROG_ATTACH, &a) < 0) {
        fprintf(stderr, "kernel-relay: attaching the verdict program: %s\n", strerror(errno));
        exit(1);
    }
}

static void watch(int op, int fd, uint32_t events) {
    struct epoll_event e = {.events = events, .data.fd = fd};
    epoll_ctl(epollFd, op, fd, &e);
}

static struct tcp_info tcpInfo(int fd) {
    struct tcp_info info;
    socklen_t len = sizeof info;
    memset(&info, 0, sizeof info);
    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len);
    return info;
}

// Bytes that arrived on fd and that the kernel has not yet queued on its peer. A FIN may
// only be passed on once this is 0; there is no event for it, hence the 1 ms poll.
static long inFlight(int fd) {
    int peer = sides[fd].peer;
    int queued = 0;
    ioctl(peer, SIOCOUTQ, &queued);
    long received = (long)tcpInfo(fd).tcpi_bytes_received - (sides[fd].readClosed ? 1 : 0);
    long handedOn = (long)tcpInfo(peer).tcpi_bytes_acked - (sides[peer].connected ? 1 : 0) + queued;
    return received - handedOn;
}

static void closePair(int fd) {
    int pair[2] = {fd, sides[fd].peer};
    for (int i = 0; i < 2; i++) {
        uint32_t slot = (uint32_t)pair[i];
        mapDelete(cookieFd, &sides[slot].cookie);
        mapDelete(sockmapFd, &slot);
        close(pair[i]);
        sides[slot].peer = -1;
    }
}

// Passes fd's FIN on to its peer once every byte before it has been handed over.
static int passFin(int fd) {
    if (inFlight(fd) > 0)
        return 0;
    int peer = sides[fd].peer;
    shutdown(peer, SHUT_WR);
    sides[peer].writeClosed = 1;
    if (sides[fd].writeClosed)
        closePair(fd);
    return 1;
}

static void onSocket(int fd, uint32_t events) {
    struct Side *s = &sides[fd];
    if (events & EPOLLERR) {
        closePair(fd);
        return;
    }
    if (events & EPOLLIN) {  // bytes that arrived before the pairing
        char buf[16384];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            send(s->peer, buf, (size_t)n, MSG_NOSIGNAL);
    }
    if ((events & (EPOLLRDHUP | EPOLLHUP)) && !s->readClosed) {
        s->readClosed = 1;
        watch(EPOLL_CTL_MOD, fd, 0);
        passFin(fd);
    }
}

static void pair(int client, int upstreamPort) {
    int upstream = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)upstreamPort)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (upstream < 0 || client >= kMaxFd || upstream >= kMaxFd ||
        connect(upstream, (struct sockaddr *)&to, sizeof to) < 0) {  // loopback: quick
        failures++;
        close(client);
        if (upstream >= 0)
            close(upstream);
        return;
    }
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&sides[client], 0, sizeof sides[client]);
    memset(&sides[upstream], 0, sizeof sides[upstream]);
    sides[client].peer = upstream;
    sides[upstream].peer = client;
    sides[upstream].connected = 1;
    highestFd = client > highestFd ? client : upstream > highestFd ? upstream : highestFd;
    socklen_t len = 8;
    getsockopt(client, SOL_SOCKET, SO_COOKIE, &sides[client].cookie, &len);
    len = 8;
    getsockopt(upstream, SOL_SOCKET, SO_COOKIE, &sides[upstream].cookie, &len);
    uint32_t c = (uint32_t)client, u = (uint32_t)upstream;
    // The target's slot is filled before a redirect can name it (an empty slot drops).
    if (mapUpdate(cookieFd, &sides[client].cookie, &u) < 0 || mapUpdate(cookieFd, &sides[upstream].cookie, &c) < 0 ||
        mapUpdate(sockmapFd, &u, &upstream) < 0 || mapUpdate(sockmapFd, &c, &client) < 0) {
        failures++;  // e.g. the client's FIN came first: a closed socket cannot join
        closePair(client);
        return;
    }
    // Only the FIN is watched: with EPOLLIN too, every redirected message would wake us.
    watch(EPOLL_CTL_ADD, client, EPOLLRDHUP);
    watch(EPOLL_CTL_ADD, upstream, EPOLLRDHUP);
    onSocket(client, EPOLLIN);  // bytes that came before the pairing
}

static volatile sig_atomic_t stopping;
static void onSignal(int signo) { (void)signo; stopping = 1; }

int main(int argc, char **argv) {
    int listeners[kMaxRoutes], upstreams[kMaxRoutes], routes = 0;
    for (int i = 0; i < kMaxFd; i++)
        sides[i].peer = -1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, onSignal);
    signal(SIGINT, onSignal);
    setUpBpf();
    epollFd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 1; i < argc && routes < kMaxRoutes; i++) {
        int listenPort, upstreamPort;
        if (sscanf(argv[i], "%d=%d", &listenPort, &upstreamPort) != 2) {
            fprintf(stderr, "usage: kernel-relay LISTEN_PORT=UPSTREAM_PORT [...]\n");
            return 2;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
        struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listenPort)};
        at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&at, sizeof at) < 0 || listen(fd, 1024) < 0) {
            fprintf(stderr, "kernel-relay: listening on 127.0.0.1:%d: %s\n", listenPort, strerror(errno));
            return 1;
        }
        listeners[routes] = fd;
        upstreams[routes++] = upstreamPort;
        watch(EPOLL_CTL_ADD, fd, EPOLLIN);
    }
    int finsWaiting = 0;
    while (!stopping) {
        struct epoll_event events[256];
        int n = epoll_wait(epollFd, events, 256, finsWaiting ? 1 : -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd, route = -1;
            for (int r = 0; r < routes; r++)
                if (listeners[r] == fd)
                    route = r;
            if (route >= 0) {
                int client;
                while ((client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                    pair(client, upstreams[route]);
            } else if (sides[fd].peer >= 0) {
                onSocket(fd, events[i].events);
            }
        }
        finsWaiting = 0;  // FINs held back for bytes still in flight: try again
        for (int fd = 0; fd <= highestFd; fd++)
            if (sides[fd].peer >= 0 && sides[fd].readClosed && !sides[sides[fd].peer].writeClosed)
                finsWaiting += !passFin(fd);
    }
    if (failures)
        fprintf(stderr, "kernel-relay: %ld connections could not be paired\n", failures);
    return 0;
}
