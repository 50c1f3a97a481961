/**
 * Cold start in a fresh process: `cold.mjs serve <bundle>` imports an allocation bundle and serves
 * `GET /allocation` once (secret read and signed KooDrive call included); `cold.mjs import <bundle>`
 * only imports a bundle (a function's init). Times are from the process's own time origin.
 */
import { httpEvent, lambdaContext } from '../../test/support/lambda.ts';
import { arg, finish, importHandler, runProbe, statusOf } from './common.ts';

runProbe(async () => {
  const bootMs = performance.now();
  const mode = arg(0);
  const handler = await importHandler(arg(1));
  const importedAt = performance.now();
  let status = 0;
  if (mode === 'serve') {
    const response = await handler(
      httpEvent('/allocation', { routeKey: 'GET /allocation' }),
      lambdaContext('koodrive-allocation-bench-allocation'),
    );
    status = statusOf(response);
    if (status !== 200) throw new Error(`the first request answered ${status}, not 200`);
  } else if (mode !== 'import') {
    throw new Error(`cold probe: unknown mode ${mode}`);
  }
  const servedAt = performance.now();
  await finish({ bootMs, importMs: importedAt - bootMs, firstRequestMs: servedAt - importedAt, status });
});
