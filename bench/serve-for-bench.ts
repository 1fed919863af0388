// The HTTP server alone, as `gazette serve` runs it, for the load generator in bench/server.ts.
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { buildServer } from '../src/server/server.ts';

const port = Number(process.argv[2]);
const app = createApp(loadConfig({ ...process.env, BASE_URL: `http://127.0.0.1:${port}` }));
const server = await buildServer(app, { logger: false, subscribeRateLimit: Number(process.env.GAZETTE_BENCH_SUBSCRIBE_LIMIT ?? 20) });
await server.listen({ port, host: '127.0.0.1' });
await server.inject({ method: 'GET', url: '/rss.xml' }); // builds the cache before the load starts
process.stdout.write('listening\n');
process.once('SIGTERM', () => void server.close().then(() => app.close()).then(() => process.exit(0)));
