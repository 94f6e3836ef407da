/* policy_loop.c: a minimal fixed-rate control loop around an exported policy.c (POSIX, C99).
 *
 *   cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic policy_loop.c policy.c -lm -o policy_loop
 *   ./policy_loop [RATE_HZ]      (default TRPO_POLICY_CONTROL_HZ; 0 = tick as soon as an observation comes)
 *
 * The "robot" here is a text pipe: every line on stdin is one observation (TRPO_POLICY_OBS_DIM numbers,
 * laid out as policy.h documents), every line on stdout the action of that tick. tests/test_c_export.py
 * drives a simulated robot through it. On a real controller replace read_observation / apply_action /
 * safe_state with your drivers and keep the loop: absolute deadlines (no drift), no allocation, and on a
 * refused observation (NaN/Inf from a broken sensor) the last valid action is held.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "policy.h"

#if TRPO_POLICY_DISCRETE
typedef int action_t[1];
#else
typedef float action_t[TRPO_POLICY_ACT_DIM];
#endif

static int read_observation(float obs[TRPO_POLICY_OBS_DIM])
{
    for (int i = 0; i < TRPO_POLICY_OBS_DIM; ++i) {
        if (scanf("%f", &obs[i]) != 1) return 0; /* end of input: the episode is over */
    }
    return 1;
}

static void apply_action(const action_t action)
{
#if TRPO_POLICY_DISCRETE
    printf("%d\n", action[0]);
#else
    for (int i = 0; i < TRPO_POLICY_ACT_DIM; ++i) printf(i ? " %.9g" : "%.9g", (double)action[i]);
    printf("\n");
#endif
    fflush(stdout);
}

static void safe_state(void)
{
    /* A real robot: zero torques, brakes on. Here the pipe just closes. */
}

static void add_ns(struct timespec *t, long ns)
{
    t->tv_nsec += ns;
    while (t->tv_nsec >= 1000000000L) {
        t->tv_nsec -= 1000000000L;
        t->tv_sec += 1;
    }
}

static int later(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

int main(int argc, char **argv)
{
    const double rate_hz = argc > 1 ? atof(argv[1]) : TRPO_POLICY_CONTROL_HZ;
    const long period_ns = rate_hz > 0.0 ? (long)(1e9 / rate_hz) : 0L;
    float obs[TRPO_POLICY_OBS_DIM];
    action_t action, held;
    long ticks = 0, refused = 0, missed = 0;
    struct timespec next, now;

    /* The safe action until the first valid one: action 0, or zero clipped into the bounds. */
#if TRPO_POLICY_DISCRETE
    held[0] = 0;
#else
    for (int i = 0; i < TRPO_POLICY_ACT_DIM; ++i) {
        const float lo = trpo_policy_action_low[i], hi = trpo_policy_action_high[i];
        held[i] = 0.0f < lo ? lo : (0.0f > hi ? hi : 0.0f);
    }
#endif
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (read_observation(obs)) {
#if TRPO_POLICY_DISCRETE
        if (trpo_policy_act(obs, &action[0]) == TRPO_POLICY_OK) held[0] = action[0];
#else
        if (trpo_policy_act(obs, action) == TRPO_POLICY_OK) {
            for (int i = 0; i < TRPO_POLICY_ACT_DIM; ++i) held[i] = action[i];
        }
#endif
        else {
            ++refused; /* hold the last valid action */
        }
        apply_action(held);
        ++ticks;
        if (period_ns > 0) {
            add_ns(&next, period_ns);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (later(&now, &next)) {
                ++missed; /* late: skip the sleep, keep the absolute schedule */
            } else {
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
            }
        }
    }
    safe_state();
    fprintf(stderr, "policy_loop: %ld ticks, %ld refused observations, %ld missed deadlines\n",
            ticks, refused, missed);
    return 0;
}
