/*
 * wake.c - see wake.h. On Linux a wake_word is a futex. Elsewhere the
 * sleeper waits on one of a fixed set of condition variables chosen by the
 * word's address (the _portable functions, which test_util also runs on
 * Linux); they live as long as the process, so a post for a word that is
 * gone only wakes, at worst, an unrelated sleeper, which re-checks.
 */
#include "util/wake.h"

#include <sched.h>
#include <time.h>

#include <uv.h>

int wake_word_spin(wake_word *w, uint32_t seen, uint64_t spin_ns)
{
    uint64_t end = uv_hrtime() + spin_ns;
    while (wake_word_seq(w) == seen) {
        if (uv_hrtime() >= end)
            return 0;
        sched_yield();
    }
    return 1;
}

#define WAKE_STRIPES 64

static struct stripe {
    uv_mutex_t mu;
    uv_cond_t cv;
} stripes[WAKE_STRIPES];
static uv_once_t stripes_once = UV_ONCE_INIT;

static void stripes_init(void)
{
    for (int i = 0; i < WAKE_STRIPES; i++) {
        uv_mutex_init(&stripes[i].mu);
        uv_cond_init(&stripes[i].cv);
    }
}

static struct stripe *stripe_of(const wake_word *w)
{
    uv_once(&stripes_once, stripes_init);
    uintptr_t a = (uintptr_t)w;
    return &stripes[((a >> 4) ^ (a >> 12)) % WAKE_STRIPES];
}

void wake_word_wait_portable(wake_word *w, uint32_t seen, uint64_t timeout_ns)
{
    struct stripe *s = stripe_of(w);
    uv_mutex_lock(&s->mu);
    /* The waker bumps before it takes the stripe's mutex to post, so a bump
       is either seen here or followed by a broadcast this wait receives. */
    if (wake_word_seq(w) == seen) {
        if (timeout_ns)
            (void)uv_cond_timedwait(&s->cv, &s->mu, timeout_ns);
        else
            uv_cond_wait(&s->cv, &s->mu);
    }
    uv_mutex_unlock(&s->mu);
}

void wake_word_post_portable(wake_word *w)
{
    struct stripe *s = stripe_of(w);
    uv_mutex_lock(&s->mu);
    uv_cond_broadcast(&s->cv);
    uv_mutex_unlock(&s->mu);
}

#ifdef __linux__

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void wake_word_wait(wake_word *w, uint32_t seen, uint64_t timeout_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
                          .tv_nsec = (long)(timeout_ns % 1000000000u)};
    /* EAGAIN (the word changed), EINTR and ETIMEDOUT all mean: re-check. */
    (void)syscall(SYS_futex, &w->seq, FUTEX_WAIT_PRIVATE, seen, timeout_ns ? &ts : NULL, NULL, 0);
}

void wake_word_post(wake_word *w)
{
    (void)syscall(SYS_futex, &w->seq, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

#else

void wake_word_wait(wake_word *w, uint32_t seen, uint64_t timeout_ns)
{
    wake_word_wait_portable(w, seen, timeout_ns);
}

void wake_word_post(wake_word *w)
{
    wake_word_post_portable(w);
}

#endif
