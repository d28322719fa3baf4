/* check_run — the end of every test program's main(): run the suite, exit
 * non-zero on any failure.  Test code only. */
#ifndef MESHD_TEST_CHECK_RUN_H
#define MESHD_TEST_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

static inline int check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
