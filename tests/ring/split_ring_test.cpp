// Split ring: request/response flow, sizes, wrap-around from near UINT32_MAX, the event-index
// notification rule (and its batching), flow control, and a peer that breaks the protocol.
// Every test runs over both layouts.
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/netif/rings.hpp>
#include <splitnet/ring/split_ring.hpp>

namespace sr = splitnet::ring;
namespace nf = splitnet::netif;

namespace {

struct req {
    std::uint32_t seq;
    std::uint32_t payload;
};
struct rsp {
    std::uint32_t seq;
    std::int32_t status;
};

struct alignas(4096) page {
    std::byte bytes[4096];
};

template <class Layout>
class SplitRing : public ::testing::Test {
protected:
    page mem_{};
    std::span<std::byte> area() { return mem_.bytes; }
};

using layouts = ::testing::Types<sr::xen_layout, sr::padded_layout>;
TYPED_TEST_SUITE(SplitRing, layouts);

} // namespace

TYPED_TEST(SplitRing, SizeIsThePowerOfTwoThatFits) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    const std::size_t fit = (4096 - TypeParam::header_bytes) / 8;
    EXPECT_EQ(f.size(), std::bit_floor(fit));
    nf::tx_front_ring<TypeParam> tx(this->area());
    EXPECT_EQ(tx.size(), 256U) << "netif TX: 12-byte slots";
}

TYPED_TEST(SplitRing, RequestsAndResponsesFlowInOrder) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    ASSERT_FALSE(b.broken());
    std::uint32_t next = 0, answered = 0;
    for (int round = 0; round < 50; ++round) {
        const std::uint32_t n = 1 + static_cast<std::uint32_t>(round % 7) * 10;
        for (std::uint32_t i = 0; i < n && !f.full(); ++i) {
            ASSERT_TRUE(f.put_request({next, next * 3}));
            ++next;
        }
        (void)f.push_requests();
        std::vector<req> got(300);
        const std::size_t k = b.get_requests(got);
        for (std::size_t i = 0; i < k; ++i) {
            EXPECT_EQ(got[i].payload, got[i].seq * 3);
            ASSERT_TRUE(b.put_response({got[i].seq, 0}));
        }
        (void)b.push_responses();
        std::vector<rsp> out(300);
        const std::size_t m = f.get_responses(out);
        for (std::size_t i = 0; i < m; ++i) {
            EXPECT_EQ(out[i].seq, answered++);
        }
    }
    EXPECT_EQ(answered, next);
    EXPECT_FALSE(f.broken());
    EXPECT_FALSE(b.broken());
}

TYPED_TEST(SplitRing, WrapsAroundTheIndexSpace) {
    const sr::ring_idx start = 0xffffff00U;
    sr::front_ring<req, rsp, TypeParam> f(this->area(), start);
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    EXPECT_EQ(b.req_cons(), start);
    std::uint32_t sent = 0, seen = 0, answered = 0;
    std::vector<req> in(64);
    std::vector<rsp> out(64);
    while (answered < 100000) {
        while (!f.full() && sent - answered < 100) {
            ASSERT_TRUE(f.put_request({sent, 0}));
            ++sent;
        }
        (void)f.push_requests();
        const std::size_t k = b.get_requests(in);
        for (std::size_t i = 0; i < k; ++i) {
            ASSERT_EQ(in[i].seq, seen++);
            ASSERT_TRUE(b.put_response({in[i].seq, 1}));
        }
        (void)b.push_responses();
        const std::size_t m = f.get_responses(out);
        for (std::size_t i = 0; i < m; ++i) {
            ASSERT_EQ(out[i].seq, answered++);
        }
    }
    EXPECT_LT(f.req_prod_pvt(), start) << "the index wrapped past 2^32";
    EXPECT_FALSE(b.broken());
}

TYPED_TEST(SplitRing, FrontEndStopsAtRingSizeOutstanding) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    for (std::uint32_t i = 0; i < f.size(); ++i) {
        ASSERT_TRUE(f.put_request({i, 0}));
    }
    EXPECT_TRUE(f.full());
    EXPECT_FALSE(f.put_request({0, 0}));
    std::vector<req> many(10, req{});
    EXPECT_EQ(f.put_requests(many), 0U);
}

TYPED_TEST(SplitRing, BackEndAnswersOnlyWhatItConsumed) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    EXPECT_FALSE(b.put_response({0, 0})) << "no request consumed yet";
    ASSERT_TRUE(f.put_request({1, 0}));
    ASSERT_TRUE(f.put_request({2, 0}));
    (void)f.push_requests();
    req r;
    ASSERT_TRUE(b.get_request(r));
    EXPECT_TRUE(b.put_response({1, 0}));
    EXPECT_FALSE(b.put_response({2, 0})) << "second request not consumed";
    std::vector<rsp> three(3, rsp{});
    ASSERT_TRUE(b.get_request(r));
    EXPECT_EQ(b.put_responses(three), 1U);
}

TYPED_TEST(SplitRing, EventIndexSuppressesAndFinalCheckRearms) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    // Fresh ring: req_event = 1, so the first publication notifies.
    ASSERT_TRUE(f.put_request({0, 0}));
    EXPECT_TRUE(f.push_requests());
    // The back end has not re-armed: further publications are silent.
    ASSERT_TRUE(f.put_request({1, 0}));
    EXPECT_FALSE(f.push_requests());
    EXPECT_FALSE(f.push_requests()) << "nothing new to publish";
    std::vector<req> in(8);
    EXPECT_EQ(b.get_requests(in), 2U);
    // Going idle: the final check finds nothing and arms req_event = cons + 1.
    EXPECT_FALSE(b.final_check_for_requests());
    ASSERT_TRUE(f.put_request({2, 0}));
    EXPECT_TRUE(f.push_requests());
    // The final check finds pending work instead of sleeping.
    EXPECT_TRUE(b.final_check_for_requests());
    EXPECT_EQ(f.stats().notify_needed, 2U);
    EXPECT_EQ(f.stats().notify_suppressed, 1U);
}

TYPED_TEST(SplitRing, BatchedEventWakesAfterKRequests) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    ASSERT_FALSE(b.final_check_for_requests(8)); // wake me after 8 requests
    int notifies = 0;
    for (std::uint32_t i = 0; i < 8; ++i) {
        ASSERT_TRUE(f.put_request({i, 0}));
        notifies += f.push_requests() ? 1 : 0;
        EXPECT_EQ(notifies, i == 7 ? 1 : 0) << "request " << i;
    }
    // Publishing several at once across the threshold notifies once.
    std::vector<req> in(8);
    EXPECT_EQ(b.get_requests(in), 8U);
    ASSERT_FALSE(b.final_check_for_requests(4));
    std::vector<req> six(6, req{});
    ASSERT_EQ(f.put_requests(six), 6U);
    EXPECT_TRUE(f.push_requests());
}

// A back end whose next packet needs 5 slots and finds 3 sleeps until the fifth arrives.
TYPED_TEST(SplitRing, FinalCheckUntilWaitsForEnoughRequests) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    std::vector<req> three(3, req{});
    ASSERT_EQ(f.put_requests(three), 3U);
    (void)f.push_requests();
    EXPECT_TRUE(b.final_check_for_requests()) << "any request is work to the plain check";
    EXPECT_FALSE(b.final_check_for_requests_until(5)) << "too few for the packet";
    ASSERT_TRUE(f.put_request({3, 0}));
    EXPECT_FALSE(f.push_requests()) << "the fourth does not wake the back end";
    EXPECT_FALSE(b.final_check_for_requests_until(5));
    ASSERT_TRUE(f.put_request({4, 0}));
    EXPECT_TRUE(f.push_requests()) << "the fifth does";
    EXPECT_TRUE(b.final_check_for_requests_until(5));
    EXPECT_TRUE(b.final_check_for_requests_until(1));
}

TYPED_TEST(SplitRing, ResponsesNotifyTheFrontEndSymmetrically) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    for (std::uint32_t i = 0; i < 4; ++i) {
        ASSERT_TRUE(f.put_request({i, 0}));
    }
    (void)f.push_requests();
    std::vector<req> in(4);
    ASSERT_EQ(b.get_requests(in), 4U);
    ASSERT_TRUE(b.put_response({0, 0}));
    EXPECT_TRUE(b.push_responses()) << "rsp_event starts at 1";
    ASSERT_TRUE(b.put_response({1, 0}));
    EXPECT_FALSE(b.push_responses());
    std::vector<rsp> out(4);
    EXPECT_EQ(f.get_responses(out), 2U);
    EXPECT_FALSE(f.final_check_for_responses());
    ASSERT_TRUE(b.put_response({2, 0}));
    EXPECT_TRUE(b.push_responses());
}

// The notification predicate equals "event lies in (old, new]" for every wrap position.
TEST(SplitRingNotify, PredicateMatchesIntervalRuleAcrossWrap) {
    std::mt19937 rng(7);
    for (int i = 0; i < 1000000; ++i) {
        const sr::ring_idx old = static_cast<sr::ring_idx>(rng());
        const auto step = static_cast<sr::ring_idx>(rng() % 300);
        const sr::ring_idx nu = old + step;
        const sr::ring_idx event =
            old + static_cast<sr::ring_idx>(static_cast<int>(rng() % 700) - 200);
        const bool in_interval = static_cast<sr::ring_idx>(event - old - 1) < step;
        ASSERT_EQ(sr::detail::need_notify(nu, old, event), in_interval)
            << old << " " << nu << " " << event;
    }
}

TYPED_TEST(SplitRing, ProducerIndexPastTheRingBreaksTheBackEnd) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    auto& req_prod = *reinterpret_cast<std::uint32_t*>(this->area().data() + TypeParam::req_prod);
    req_prod = b.size() + 1; // claims more requests than slots
    EXPECT_EQ(b.poll_requests(), 0U);
    ASSERT_TRUE(b.broken());
    EXPECT_EQ(b.fault().kind, sr::ring_fault_kind::producer_overrun);
    EXPECT_NE(b.fault().describe().find("more than the"), std::string::npos);
    // A broken back end stops doing anything, for good.
    req_prod = 1;
    std::vector<req> in(4);
    EXPECT_EQ(b.get_requests(in), 0U);
    EXPECT_FALSE(b.put_response({0, 0}));
    EXPECT_FALSE(b.push_responses());
    EXPECT_FALSE(b.final_check_for_requests());
}

TYPED_TEST(SplitRing, ProducerIndexMovingBackBreaksTheBackEnd) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    for (std::uint32_t i = 0; i < 10; ++i) {
        ASSERT_TRUE(f.put_request({i, 0}));
    }
    (void)f.push_requests();
    std::vector<req> in(4);
    ASSERT_EQ(b.get_requests(in), 4U);
    auto& req_prod = *reinterpret_cast<std::uint32_t*>(this->area().data() + TypeParam::req_prod);
    req_prod = 7; // back behind what the back end saw (10), but ahead of what it consumed
    EXPECT_EQ(b.poll_requests(), 0U);
    EXPECT_EQ(b.fault().kind, sr::ring_fault_kind::producer_backwards);
    req_prod = 0xfffffff0U; // far behind: huge distance
    sr::back_ring<req, rsp, TypeParam> b3(this->area());
    EXPECT_TRUE(b3.broken()) << "checked at attach";
}

TYPED_TEST(SplitRing, AFaultFoundByThePeekItselfYieldsNothing) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    for (std::uint32_t i = 0; i < 4; ++i) {
        ASSERT_TRUE(f.put_request({i, 0}));
    }
    (void)f.push_requests();
    ASSERT_EQ(b.poll_requests(), 4U); // seen, not yet read
    auto& req_prod = *reinterpret_cast<std::uint32_t*>(this->area().data() + TypeParam::req_prod);
    req_prod = 2; // moves back: the peek's own poll finds it
    std::vector<req> in(4);
    EXPECT_EQ(b.peek_requests(in), 0U) << "requests seen before the fault are not handed out";
    EXPECT_TRUE(b.broken());
    EXPECT_FALSE(b.put_response({0, 0})) << "nothing was consumed, nothing can be answered";
}

TYPED_TEST(SplitRing, UnansweredRequestsLimitNewOnes) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    for (std::uint32_t i = 0; i < f.size(); ++i) {
        ASSERT_TRUE(f.put_request({i, 0}));
    }
    (void)f.push_requests();
    std::vector<req> in(f.size());
    ASSERT_EQ(b.get_requests(in), f.size());
    // All slots hold unanswered requests: a front end publishing one more is lying.
    auto& req_prod = *reinterpret_cast<std::uint32_t*>(this->area().data() + TypeParam::req_prod);
    req_prod += 1;
    EXPECT_EQ(b.poll_requests(), 0U);
    EXPECT_TRUE(b.broken());
}

TYPED_TEST(SplitRing, ResponsesBeyondRequestsBreakTheFrontEnd) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    ASSERT_TRUE(f.put_request({0, 0}));
    (void)f.push_requests();
    auto& rsp_prod = *reinterpret_cast<std::uint32_t*>(this->area().data() + TypeParam::rsp_prod);
    rsp_prod = 2; // two responses to one request
    std::vector<rsp> out(4);
    EXPECT_EQ(f.get_responses(out), 0U);
    EXPECT_TRUE(f.broken());
    EXPECT_EQ(f.fault().kind, sr::ring_fault_kind::producer_overrun);
}

TYPED_TEST(SplitRing, RequestsAreCopiedOutBeforeUse) {
    sr::front_ring<req, rsp, TypeParam> f(this->area());
    sr::back_ring<req, rsp, TypeParam> b(this->area());
    ASSERT_TRUE(f.put_request({42, 4242}));
    (void)f.push_requests();
    std::vector<req> in(1);
    ASSERT_EQ(b.peek_requests(in), 1U);
    // The front end rewrites the slot after the back end copied it: the copy is what counts.
    auto* slot = reinterpret_cast<req*>(this->area().data() + TypeParam::header_bytes);
    slot->seq = 666;
    slot->payload = 666;
    EXPECT_EQ(in[0].seq, 42U);
    EXPECT_EQ(in[0].payload, 4242U);
    b.consume_requests(1);
    EXPECT_EQ(b.req_cons(), 1U);
}
