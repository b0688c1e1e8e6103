/** Kept for old imports: the renderer is lib/progress.ts. */
export { progressLine, progressReporter, formatDuration, type ProgressLine, type ProgressReporter } from '../progress.js';
