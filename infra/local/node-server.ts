import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on host:port (0 = ephemeral) and resolves to the bound port. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Closes a server, dropping idle keep-alive sockets first so the close does not wait for
 * clients that never hang up.
 */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    // dynalite and kinesalite wrap close() and call back with null on success.
    server.close((error?: Error | null) => {
      // ERR_SERVER_NOT_RUNNING: already closed; close is idempotent for callers.
      if (error instanceof Error && (error as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING') reject(error);
      else resolve();
    });
    server.closeIdleConnections();
    server.closeAllConnections();
  });
}
