/*
 * sync_key.c - the sync key: the lowercase hex SHA-1 of the key file's
 * contents (40 characters), as OpenBSD spamd's SHA1File(). The HMAC key
 * is that text, not the 20 binary bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pf-sync/sync.h"

/* hex - 20 digest bytes as 40 lowercase hex characters and a NUL */
static void
hex(const unsigned char *md, char out[PSYNC_KEY_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < PSYNC_KEY_LEN / 2; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 0xf];
	}
	out[PSYNC_KEY_LEN] = '\0';
}

/* psync_key_from_bytes - the key for key file contents held in memory */
void
psync_key_from_bytes(const void *data, size_t len,
    char out[PSYNC_KEY_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != PSYNC_KEY_LEN / 2) {
		out[0] = '\0';
		return;
	}
	hex(md, out);
}

/* key_load - read path and derive the key from its contents; any_mode
 * takes a file that group or others may access */
static int
key_load(const char *path, char out[PSYNC_KEY_LEN + 1], int any_mode,
    struct psync_err *err)
{
	unsigned char buf[4096], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	struct stat st = { 0 };
	ssize_t r;
	int fd, ok = 1;

	out[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		/* why name the option: OpenBSD spamd syncs with the empty
		 * key when the file is missing, and an admin moving over
		 * must find how to get that back */
		snprintf(err->msg, sizeof(err->msg), "sync key %s: %s%s",
		    path, strerror(errno), errno == ENOENT ? " (create it "
		    "on every peer, e.g. from 4096 random bytes, mode 600; "
		    "OpenBSD spamd then syncs with the empty key: "
		    "--sync-no-auth does the same, unauthenticated)" : "");
		err->reason = PSYNC_D_NONE;
		err->offset = 0;
		return -1;
	}
	/* a shared secret others can read or change is no secret */
	if (fstat(fd, &st) == -1 ||
	    (!any_mode && (st.st_mode & (S_IRWXG | S_IRWXO)))) {
		if (st.st_mode & (S_IRWXG | S_IRWXO))
			snprintf(err->msg, sizeof(err->msg), "sync key %s: "
			    "mode %04o: group or others may access it (chmod "
			    "600 %s; OpenBSD spamd uses it whatever its mode: "
			    "--sync-key-any-mode does the same)", path,
			    (unsigned)(st.st_mode & 07777), path);
		else
			snprintf(err->msg, sizeof(err->msg), "sync key %s: "
			    "fstat: %s", path, strerror(errno));
		err->reason = PSYNC_D_NONE;
		err->offset = 0;
		close(fd);
		return -1;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1)
		ok = 0;
	while (ok && (r = read(fd, buf, sizeof(buf))) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err->msg, sizeof(err->msg), "sync key %s: "
			    "read: %s", path, strerror(errno));
			EVP_MD_CTX_free(ctx);
			close(fd);
			return -1;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1)
			ok = 0;
	}
	close(fd);
	if (!ok || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 ||
	    mdlen != PSYNC_KEY_LEN / 2) {
		snprintf(err->msg, sizeof(err->msg), "sync key %s: SHA-1 "
		    "failed", path);
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	EVP_MD_CTX_free(ctx);
	hex(md, out);
	return 0;
}

/* psync_key_load - the key of path, refusing a file group or others may
 * access (sync.h) */
int
psync_key_load(const char *path, char out[PSYNC_KEY_LEN + 1],
    struct psync_err *err)
{
	return key_load(path, out, 0, err);
}

/* psync_key_load_any - the key of path whatever its mode (sync.h) */
int
psync_key_load_any(const char *path, char out[PSYNC_KEY_LEN + 1],
    struct psync_err *err)
{
	return key_load(path, out, 1, err);
}
