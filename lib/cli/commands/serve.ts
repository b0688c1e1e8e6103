/** `robust-synth serve`: the local web playground (lib/serve/). */
import { setThreads, type Device } from '../../classifier.js';
import { RobustSynthError } from '../../errors.js';
import { isLoopback, startPlayground } from '../../serve/server.js';
import { numberFlag, untilStopped, type Command } from '../command.js';

export const serveCommand: Command = {
  name: 'serve',
  usage: '[--port 5177] [--host 127.0.0.1 | --host ADDR --allowed-host NAME...] [--model-dir DIR] [options]',
  options: {
    port: { type: 'string', default: '5177', value: 'N', description: 'the port to listen on (0: any free port)' },
    host: { type: 'string', default: '127.0.0.1', value: 'ADDR', description: 'the address to bind; anything but loopback lets others on the network reach it, and needs --allowed-host' },
    'allowed-host': { type: 'string', multiple: true, value: 'NAME', description: 'a host name (or address) clients use to reach the server; every request\'s Host must be one of them (or loopback on a loopback bind)', params: ['allowedHosts'] },
    'no-token': { type: 'boolean', default: false, description: 'loopback only: no access token (any local process and page load can use the API)', params: ['token'] },
    'model-dir': { type: 'string', multiple: true, value: 'DIR', description: 'a directory of further models (.pt and their cards) to offer by name', params: ['modelDirs'] },
    device: { type: 'string', default: 'auto', value: 'cpu|cuda|cuda:N|auto', description: 'where to compute' },
    threads: { type: 'string', value: 'N|auto', description: 'CPU threads for the compute (default: auto, the cores other processes leave free)' },
    'max-upload-mb': { type: 'string', default: '5', value: 'MB', description: 'the largest image upload accepted', params: ['maxUploadBytes'] },
    'max-iterations': { type: 'string', default: '10000', value: 'N', description: 'the most PGD iterations a job may ask for', params: ['maxIterations'] },
  },
  async run(values) {
    const port = numberFlag(values, 'port');
    const host = String(values.host);
    const mb = numberFlag(values, 'max-upload-mb') ?? 5;
    if (!(mb > 0 && mb <= 1024)) throw new RobustSynthError('ERR_BAD_INPUT', `--max-upload-mb must be a number > 0 and <= 1024, got ${mb}`);
    const threads = values.threads === 'auto' ? 'auto' : numberFlag(values, 'threads');
    if (threads !== undefined) setThreads(threads);
    const playground = await startPlayground({
      port,
      host,
      allowedHosts: (values['allowed-host'] as string[] | undefined) ?? [],
      token: values['no-token'] !== true,
      modelDirs: (values['model-dir'] as string[] | undefined) ?? [],
      device: String(values.device) as Device,
      maxUploadBytes: Math.round(mb * 1024 * 1024),
      maxIterations: numberFlag(values, 'max-iterations'),
    });
    if (!isLoopback(host)) {
      console.error(
        `robust-synth serve: listening on ${host}, not loopback: anyone who can reach this port and holds the address below ` +
          'can run jobs on this machine (over plain HTTP; see docs/playground.md)',
      );
    }
    // Printed once: the token in it is the key to the API (a browser keeps it as a cookie).
    console.log(`robust-synth playground: ${playground.openUrl}  (Ctrl-C stops it)`);
    await untilStopped();
    console.log('robust-synth playground: stopping');
    await playground.close();
    return 0;
  },
};
