/*
 * banned.h - libc calls that gpupool never uses.
 *
 * These functions either cannot be used safely (no bound on the destination)
 * or keep hidden global state.  Including this header last turns any use into
 * a compile error.  Use snprintf, gp_strlcpy (util.h), strtok_r and the
 * gmtime_r/localtime_r family instead.
 */
#ifndef GP_BANNED_H
#define GP_BANNED_H

#define GP_BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) GP_BANNED(strcpy)
#undef strcat
#define strcat(x, y) GP_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) GP_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) GP_BANNED(strncat)
#undef sprintf
#define sprintf(...) GP_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) GP_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) GP_BANNED(strtok)
#undef gets
#define gets(x) GP_BANNED(gets)
#undef gmtime
#define gmtime(t) GP_BANNED(gmtime)
#undef localtime
#define localtime(t) GP_BANNED(localtime)
#undef asctime
#define asctime(t) GP_BANNED(asctime)
#undef ctime
#define ctime(t) GP_BANNED(ctime)
#undef atoi
#define atoi(s) GP_BANNED(atoi)

#endif
