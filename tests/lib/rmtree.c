/* rmtree — see rmtree.h. */
#include "config.h"

#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmtree.h"

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void rmtree(const char *dir)
{
	if (dir[0] == '\0' || strcmp(dir, "/") == 0)
		return;
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
