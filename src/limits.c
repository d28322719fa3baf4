/* limits — see include/meshd/limits.h. */
#include "config.h"

#include <string.h>

#include "meshd/limits.h"

bool limit_text_ok(const char *s, size_t len, size_t max)
{
	if (len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return false;
	}
	return true;
}

bool limit_group_ok(const char *name, const char *role)
{
	return limit_text_ok(name, strlen(name), GROUP_NAME_MAX_BYTES) &&
	       (!role || limit_text_ok(role, strlen(role), GROUP_ROLE_MAX_BYTES));
}
