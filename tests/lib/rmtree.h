/* rmtree — removes a test's temporary directory tree (no symlinks followed;
 * "" and "/" are refused).  Test code only. */
#ifndef MESHD_TEST_RMTREE_H
#define MESHD_TEST_RMTREE_H

void rmtree(const char *dir);

#endif
