/* thread — which thread is running, for ownership assertions.
 *
 * Every meshd thread records its role and index in thread-locals when it
 * starts.  Debug and sanitizer builds turn MESHD_ASSERT_ON_WORKER(w) and
 * friends into checks, so a function documented as "worker thread, owner
 * shard only" aborts loudly when called from anywhere else.
 */
#ifndef MESHD_THREAD_H
#define MESHD_THREAD_H

#include <assert.h>
#include <pthread.h>

enum thread_role { THREAD_MAIN = 0, THREAD_ACCEPTOR, THREAD_WORKER, THREAD_DB, THREAD_OTHER };

/* Set by each thread for itself as it starts (any thread). */
void thread_set_role(enum thread_role role, int index);
enum thread_role thread_role(void);
int thread_index(void);
/* Names the calling thread (visible in top -H, gdb, TSan reports): 15 chars max. */
void thread_set_name(const char *name);

#ifdef MESHD_DEBUG
#define MESHD_ASSERT_ON_WORKER(w) \
	assert(thread_role() == THREAD_WORKER && thread_index() == (w)->id)
#define MESHD_ASSERT_ON(role) assert(thread_role() == (role))
#else
#define MESHD_ASSERT_ON_WORKER(w) ((void)(w))
#define MESHD_ASSERT_ON(role) ((void)0)
#endif

#endif
