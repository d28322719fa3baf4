/* thread — thread roles for ownership assertions; see include/meshd/thread.h. */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "meshd/thread.h"

static _Thread_local enum thread_role my_role = THREAD_MAIN;
static _Thread_local int my_index;

void thread_set_role(enum thread_role role, int index)
{
	my_role = role;
	my_index = index;
}

enum thread_role thread_role(void)
{
	return my_role;
}

int thread_index(void)
{
	return my_index;
}

void thread_set_name(const char *name)
{
	char buf[16];
	strncpy(buf, name, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	pthread_setname_np(pthread_self(), buf);
}
