/* limits — see include/meshd/limits.h. */
#include "config.h"

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
