// Package ratelimit is the built-in rate limiter behind
// POST /v1/ratelimit/{key}/check: one object per key, each check one event,
// so checks on a key are atomic and exact under any concurrency.
//
// Two algorithms, chosen per check:
//
//   - SlidingLog (the default) is exact: a request is allowed iff the
//     summed cost of the allowed requests in (now-window, now], plus its
//     own, is at most the limit. Each allowed request is a row with a
//     running total of cost, so a check is one indexed lookup and an
//     append, whatever the number of rows.
//   - TokenBucket is GCRA: limit tokens refill per window, with a burst of
//     limit, in one row, on an exact grid of 1/limit ms.
//
// Each check applies its own limit, window and cost to the key's stored
// history. A cleanup alarm deletes log entries once they are older than
// every window in use, and the bucket once it has been full for a window,
// so an idle key's storage returns to empty. docs/patterns/ratelimit.md
// has the storage layout and every choice made where api.md is silent.
package ratelimit
