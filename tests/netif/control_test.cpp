// The control channel: messages survive the wire exactly, malformed or foreign ones are refused
// with a reason, descriptors travel and are never leaked, a back end's socket path is reusable
// after a crash but not stolen from a live back end; and feature negotiation follows netif's
// rules in each direction.
#include <cstring>
#include <filesystem>
#include <string>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <splitnet/netif/connection.hpp>
#include <splitnet/netif/control.hpp>
#include <splitnet/netif/features.hpp>

namespace sn = splitnet::netif;
namespace sc = splitnet::netif::control;

namespace {

bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

TEST(ControlMessage, RoundTripsKeysStateAndType) {
    sc::message m(sc::message_type::connect, sc::link_state::initialised);
    m.set("feature-sg", 1).set("queue-1/tx-ring-ref", 4711).set("mac", "02:00:00:00:00:01");
    m.set("feature-sg", "0"); // replaces
    sc::message r;
    const auto bytes = m.encode();
    ASSERT_FALSE(r.decode(bytes).has_value());
    EXPECT_EQ(r.type(), sc::message_type::connect);
    EXPECT_EQ(r.state(), sc::link_state::initialised);
    EXPECT_EQ(r.get("feature-sg"), "0");
    EXPECT_FALSE(r.get_flag("feature-sg"));
    EXPECT_EQ(r.get_uint("queue-1/tx-ring-ref"), 4711U);
    EXPECT_EQ(r.get_uint("queue-1/tx-ring-ref", 4710), std::nullopt) << "above the limit";
    EXPECT_EQ(r.get_uint("mac"), std::nullopt) << "not a number";
    EXPECT_EQ(r.keys().size(), 3U);
    EXPECT_THROW(m.set("Bad Key", "x"), std::invalid_argument);
    EXPECT_THROW(m.set("k", "line\nbreak"), std::invalid_argument);
}

TEST(ControlMessage, RefusesMalformedBytesWithAReason) {
    sc::message good(sc::message_type::hello, sc::link_state::init_wait);
    good.set("a", "1");
    const auto bytes = good.encode();
    sc::message r;
    auto bad = bytes;
    bad[0] = std::byte{0};
    EXPECT_NE(r.decode(bad)->find("magic"), std::string::npos);
    bad = bytes;
    bad[6] = std::byte{9};
    EXPECT_NE(r.decode(bad)->find("type"), std::string::npos);
    bad = bytes;
    bad[12] = std::byte{100};
    EXPECT_NE(r.decode(bad)->find("length"), std::string::npos);
    bad = bytes;
    bad.back() = std::byte{'x'}; // the last line loses its newline
    EXPECT_TRUE(r.decode(bad).has_value());
    bad = bytes;
    bad[16] = std::byte{'='}; // empty key
    EXPECT_TRUE(r.decode(bad).has_value());
    EXPECT_TRUE(r.keys().empty()) << "nothing half-parsed is kept";
    EXPECT_EQ(sc::parse_decimal("18446744073709551615", ~0ULL), ~0ULL);
    EXPECT_EQ(sc::parse_decimal("18446744073709551616", ~0ULL), std::nullopt);
    EXPECT_EQ(sc::parse_decimal("5", 3), std::nullopt);
    EXPECT_EQ(sc::parse_decimal("", 3), std::nullopt);
}

TEST(ControlMessage, AnotherVersionIsNamedAndRefused) {
    sc::message m(sc::message_type::hello, sc::link_state::init_wait);
    auto bytes = m.encode();
    bytes[4] = std::byte{2};
    sc::message r;
    const auto why = r.decode(bytes);
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("version 2"), std::string::npos) << *why;
    EXPECT_NE(why->find("version 1"), std::string::npos) << *why;
}

TEST(ControlChannel, DescriptorsTravelAndAreClosedWithTheMessage) {
    auto [a, b] = sc::channel::pair();
    const int e1 = ::eventfd(0, EFD_CLOEXEC), e2 = ::eventfd(0, EFD_CLOEXEC);
    sc::message m(sc::message_type::connect, sc::link_state::initialised);
    m.set("event-channel", std::to_string(m.add_fd(e1)) + "," + std::to_string(m.add_fd(e2)));
    ASSERT_TRUE(a.send(m));
    int kept = -1, dropped = -1;
    {
        sc::message r;
        ASSERT_EQ(b.receive(r, std::chrono::seconds(1)).status, sc::receive_status::ok);
        ASSERT_EQ(r.fd_count(), 2U);
        kept = r.take_fd(0);
        dropped = r.fds()[1];
        EXPECT_TRUE(fd_open(dropped));
        EXPECT_EQ(r.take_fd(0), -1) << "taken once";
    }
    EXPECT_TRUE(fd_open(kept));
    EXPECT_FALSE(fd_open(dropped)) << "an untaken descriptor is closed with its message";
    ::close(kept);
    ::close(e1);
    ::close(e2);
    sc::message r;
    EXPECT_EQ(b.receive(r, std::chrono::milliseconds(10)).status, sc::receive_status::timeout);
    { auto gone = std::move(a); }
    EXPECT_EQ(b.receive(r, std::chrono::milliseconds(100)).status, sc::receive_status::closed);
}

TEST(ControlListener, ReplacesAStaleSocketButNotALiveOne) {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("splitnet-ctl-" + std::to_string(::getpid())))
            .string();
    {
        sc::listener first(path);
        EXPECT_THROW(sc::listener second(path), std::runtime_error) << "a live back end";
        auto c = sc::channel::connect(path);
        int accepted = 0;
        while (first.accept().valid()) { // the second listener's probe, then ours
            ++accepted;
        }
        EXPECT_GE(accepted, 1);
    }
    EXPECT_FALSE(std::filesystem::exists(path)) << "removed on destruction";
    // A crashed back end leaves its socket file behind: bound, then closed without unlink.
    const int raw = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    ASSERT_EQ(::bind(raw, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(raw);
    ASSERT_TRUE(std::filesystem::exists(path));
    EXPECT_THROW((void)sc::channel::connect(path), std::system_error)
        << "no back end: a clear error";
    {
        sc::listener again(path); // replaces the stale file
        auto c = sc::channel::connect(path);
        EXPECT_TRUE(again.accept().valid());
    }
}

TEST(Features, EachDirectionFollowsItsOwnSide) {
    std::string why;
    sn::backend_offer o;
    sn::frontend_request r;
    auto n = sn::negotiate(o, r, why);
    ASSERT_TRUE(n);
    EXPECT_TRUE(n->tx_sg && n->tx_gso_tcpv4 && n->tx_gso_tcpv6 && n->rx_sg && n->rx_gso_tcpv4);
    o.gso_tcpv6 = false;
    r.gso_tcpv4 = false;
    n = sn::negotiate(o, r, why);
    EXPECT_FALSE(n->tx_gso_tcpv6) << "the back end's key governs TX";
    EXPECT_TRUE(n->rx_gso_tcpv6) << "the front end's key governs RX";
    EXPECT_FALSE(n->rx_gso_tcpv4);
    EXPECT_TRUE(n->tx_gso_tcpv4);
    o.sg = false;
    r.sg = false;
    n = sn::negotiate(o, r, why);
    EXPECT_FALSE(n->tx_sg || n->tx_gso_tcpv4) << "GSO needs scatter-gather";
    EXPECT_FALSE(n->rx_sg || n->rx_gso_tcpv6);
    r = {};
    r.no_csum_offload = true;
    n = sn::negotiate(sn::backend_offer{}, r, why);
    EXPECT_FALSE(n->rx_csum_ipv4);
    EXPECT_FALSE(n->rx_gso_tcpv4) << "aggregates arrive with partial checksums";
    r = {};
    r.queues = 5;
    EXPECT_FALSE(sn::negotiate(sn::backend_offer{}, r, why));
    EXPECT_NE(why.find("at most 4"), std::string::npos) << why;
    r = {};
    r.rx_copy = sn::copy_side::frontend;
    o = {};
    o.frontend_copy = false;
    EXPECT_FALSE(sn::negotiate(o, r, why));
    EXPECT_NE(why.find("--copy frontend"), std::string::npos) << why;
    r = {};
    r.rx_ring_order = 2;
    n = sn::negotiate(sn::backend_offer{}, r, why);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->rx_ring_pages, 4U);
    o = {};
    o.max_rx_ring_order = 1;
    EXPECT_FALSE(sn::negotiate(o, r, why)) << "a front end asks within the offer";
    EXPECT_NE(why.find("at most 2"), std::string::npos) << why;
}

TEST(Features, KeysRoundTripAndRxCopyIsRequired) {
    sn::backend_offer o;
    o.gso_tcpv6 = false;
    o.max_queues = 3;
    sc::message m(sc::message_type::hello, sc::link_state::init_wait);
    o.write(m);
    EXPECT_EQ(m.get("feature-rx-copy"), "1");
    const auto back = sn::backend_offer::read(m);
    EXPECT_FALSE(back.gso_tcpv6);
    EXPECT_EQ(back.max_queues, 3U);
    EXPECT_EQ(back.max_rx_ring_order, sn::max_rx_ring_page_order);
    sc::message old_hello(sc::message_type::hello, sc::link_state::init_wait);
    old_hello.set("feature-rx-copy", 1);
    EXPECT_EQ(sn::backend_offer::read(old_hello).max_rx_ring_order, 0U)
        << "a back end that does not say offers one page";
    sn::frontend_request r;
    r.queues = 2;
    r.rx_copy = sn::copy_side::frontend;
    r.rx_ring_order = 1;
    sc::message c(sc::message_type::connect, sc::link_state::initialised);
    r.write(c);
    std::string why;
    auto rr = sn::frontend_request::read(c, why);
    ASSERT_TRUE(rr);
    EXPECT_EQ(rr->queues, 2U);
    EXPECT_EQ(rr->rx_ring_order, 1U);
    EXPECT_EQ(rr->rx_copy, sn::copy_side::frontend);
    sc::message flip(sc::message_type::connect, sc::link_state::initialised);
    flip.set("feature-sg", 1);
    EXPECT_FALSE(sn::frontend_request::read(flip, why));
    EXPECT_NE(why.find("request-rx-copy"), std::string::npos);
}

} // namespace
