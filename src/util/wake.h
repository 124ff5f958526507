/*
 * wake.h - waking a thread that may return, and reuse the memory it slept
 * on, the moment it sees why it was woken.
 *
 * A thread that waits on a condition variable on its own stack has to be
 * signalled while the waker still holds the mutex (else it could see its
 * condition, return and free the variable before the signal lands), so every
 * woken thread first blocks on that mutex. A wake_word avoids that: the waker
 * changes what the sleeper looks at and calls wake_word_bump() under the
 * mutex, and calls wake_word_post() after releasing it. wake_word_post()
 * never reads or writes the word: it only names its address to the kernel
 * (Linux futex) or to a fixed table of stripes (elsewhere), so the sleeper's
 * memory may already be gone.
 *
 * The word must be bumped while the sleeper's memory is known to be live
 * and before the post; a sleeper that sees the bump may return before the
 * post arrives.
 *
 *   sleeper (mu held)                      waker (mu held)
 *   seen = wake_word_seq(&w)               change the state; wake_word_bump(&w)
 *   unlock mu                              unlock mu
 *   wake_word_wait(&w, seen, timeout)      wake_word_post(&w)
 *   lock mu; re-check the state
 *
 * wake_word_wait() returns at once if the word no longer holds seen, and may
 * return early for no reason: the sleeper always re-checks.
 */
#ifndef STRATA_UTIL_WAKE_H
#define STRATA_UTIL_WAKE_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct {
    _Atomic uint32_t seq;
} wake_word;

/* The word's value now, to pass to wake_word_wait. */
static inline uint32_t wake_word_seq(wake_word *w)
{
    return atomic_load_explicit(&w->seq, memory_order_acquire);
}

/* Changes the word, so a wait on the old value returns. Call it while the
   sleeper's memory is known to be live (under the lock it re-checks under). */
static inline void wake_word_bump(wake_word *w)
{
    atomic_fetch_add_explicit(&w->seq, 1, memory_order_release);
}

/* Sleeps while the word holds seen, for at most timeout_ns (0: no limit). */
void wake_word_wait(wake_word *w, uint32_t seen, uint64_t timeout_ns);

/* Wakes the threads sleeping on w's address. Touches nothing at that address. */
void wake_word_post(wake_word *w);

/* The same two without a futex: what wait and post are where there is none.
   Exposed so that tests run them on Linux too. */
void wake_word_wait_portable(wake_word *w, uint32_t seen, uint64_t timeout_ns);
void wake_word_post_portable(wake_word *w);

/* Gives the CPU away (sched_yield) in a loop until the word no longer holds
   seen or spin_ns have passed; returns whether it changed. For a wake that is
   due within tens of microseconds: sleeping would add the time the kernel
   takes to wake the thread and put it on a core (10-30 us on a small VM). */
int wake_word_spin(wake_word *w, uint32_t seen, uint64_t spin_ns);

#endif
