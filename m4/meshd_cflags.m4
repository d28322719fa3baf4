# MESHD_CHECK_CFLAG(FLAG, [ACTION-IF-OK], [ACTION-IF-NOT])
# Compiles an empty program with FLAG (and -Werror, so a flag the compiler
# only warns about counts as unsupported).
AC_DEFUN([MESHD_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([cache], [meshd_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [cache], [
    meshd_save_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AS_VAR_SET([cache], [yes])], [AS_VAR_SET([cache], [no])])
    CFLAGS=$meshd_save_CFLAGS
  ])
  AS_VAR_IF([cache], [yes], [$2], [$3])
  AS_VAR_POPDEF([cache])
])
