/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * ipc-client.c: a test client of the `pve2` IPC service, through libqb as
 * PVE::IPCC does.
 *
 *   ipc-client NAME CODE      < payload    sends header(CODE) + payload
 *   ipc-client --raw NAME     < request    sends the bytes as they are
 *
 * Prints "error <n> <len>\n" and then the reply data; exit status 0 if a
 * reply came, 2 if the connection failed, 3 if the request failed.
 */
#include "config.h"

#include <errno.h>
#include <qb/qbipcc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define MAX (1024 * 1024)

int main(int argc, char **argv)
{
	int raw = argc > 1 && strcmp(argv[1], "--raw") == 0;
	if (argc != (raw ? 3 : 3)) {
		fprintf(stderr, "usage: ipc-client NAME CODE < payload | ipc-client --raw NAME < "
				"request\n");
		return 1;
	}
	static char in[MAX + 64], out[MAX + 64];
	size_t n = fread(in, 1, sizeof(in), stdin);
	qb_ipcc_connection_t *c = qb_ipcc_connect(raw ? argv[2] : argv[1], MAX);
	if (!c) {
		printf("connect-error %d\n", errno);
		return 2;
	}
	struct iovec iov[2];
	int niov;
	struct qb_ipc_request_header h = {0};
	if (raw) {
		iov[0].iov_base = in;
		iov[0].iov_len = n;
		niov = 1;
	} else {
		h.id = atoi(argv[2]);
		h.size = (int32_t)(sizeof(h) + n);
		iov[0].iov_base = &h;
		iov[0].iov_len = sizeof(h);
		iov[1].iov_base = in;
		iov[1].iov_len = n;
		niov = n ? 2 : 1;
	}
	ssize_t r = qb_ipcc_sendv_recv(c, iov, (unsigned)niov, out, sizeof(out), 10000);
	qb_ipcc_disconnect(c);
	if (r < 0) {
		printf("request-error %zd\n", r);
		return 3;
	}
	struct qb_ipc_response_header *rh = (void *)out;
	size_t dlen = (size_t)r - sizeof(*rh);
	printf("error %d %zu\n", rh->error, dlen);
	fwrite(out + sizeof(*rh), 1, dlen, stdout);
	return 0;
}
