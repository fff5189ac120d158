import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that can start swallowing every byte in
 * both directions, as a network partition does: connections stay open and
 * nothing answers, the failure that made requests hang for minutes.
 */
export class BlackHoleProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  blackHoled = false;
  port = 0;

  constructor(private readonly targetPort: number, private readonly targetHost = '127.0.0.1') {}

  /** While down, every connection is dropped at once, as a database that restarts or fails over. */
  down = false;

  /** A restart or a failover: every open connection is cut, and new ones are refused until `up`. */
  drop(): void {
    this.down = true;
    for (const socket of this.sockets) socket.destroy();
  }

  up(): void {
    this.down = false;
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.down) {
        client.destroy();
        return;
      }
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      const upstream = connect(this.targetPort, this.targetHost);
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('data', (chunk) => this.blackHoled || upstream.write(chunk));
      upstream.on('data', (chunk) => this.blackHoled || client.write(chunk));
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  /** Ends the partition: connections opened during it are dropped, new ones work. */
  heal(): void {
    this.blackHoled = false;
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
