/**
 * `robust-synth collect`: writes the results of a `submit --detach` into a local directory as
 * they arrive from the workers through Redis, until every job of the submission has finished
 * or failed; each result leaves Redis once its file and the manifest are on disk.
 */
import { resolve } from 'node:path';
import { RobustSynthError } from '../../errors.js';
import { readRedisFlags, REDIS_FLAGS } from '../queue-options.js';
import { SUBMISSION_ID } from '../../queue/keys.js';
import { checkRedis } from '../../queue/redis.js';
import { submissionJobs } from '../../queue/submit.js';
import { checkOutDir, required, type Command } from '../command.js';
import { follow } from './submit.js';

export const collectCommand: Command = {
  name: 'collect',
  usage: '--redis URL --submission ID --out DIR',
  options: {
    ...REDIS_FLAGS,
    submission: { type: 'string', value: 'ID', description: 'the submission to collect (what `submit --detach` printed)' },
    out: { type: 'string', value: 'DIR', description: 'the directory to write the outputs and manifest.json into' },
  },
  async run(values) {
    const submission = required(values, 'submission', 'the id `submit --detach` printed');
    if (!SUBMISSION_ID.test(submission)) throw new RobustSynthError('ERR_BAD_INPUT', `--submission must be letters, digits, . _ -, got '${submission}'`);
    checkOutDir(resolve(required(values, 'out', 'the output directory')));
    const redis = readRedisFlags(values);
    await checkRedis(redis.connection, redis.url);
    const jobs = await submissionJobs({ connection: redis.connection, queue: redis.queue, submission });
    if (jobs.some((j) => j.out !== undefined)) {
      throw new RobustSynthError('ERR_BAD_INPUT', `submission ${submission} was submitted with --shared: its workers write into ${jobs.find((j) => j.out)!.out} themselves, there is nothing to collect`);
    }
    return follow(values, jobs, `collect ${submission}`, [], true);
  },
};
