import { TASK_STATUSES } from '../database/migrations.js';

export { TASK_STATUSES };
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** The statuses a task can still leave: the ones "in progress" in the broad sense. */
export const ACTIVE_STATUSES = ['enqueued', 'dequeued', 'running', 'child_running'] as const;
export const FINISHED_STATUSES = ['completed', 'failed', 'cancelled'] as const;

/** TAO's categorized status, which its clients and the web page show. */
export const PUBLIC_STATUSES = [
  'created',
  'in_progress',
  'completed',
  'failed',
  'archived',
  'cancelled',
] as const;
export type PublicStatus = (typeof PUBLIC_STATUSES)[number];

export function publicStatus(status: TaskStatus): PublicStatus {
  switch (status) {
    case 'enqueued':
      return 'created';
    case 'dequeued':
    case 'running':
    case 'child_running':
      return 'in_progress';
    default:
      return status;
  }
}

const LABELS: Record<PublicStatus, string> = {
  created: 'Queued',
  in_progress: 'In Progress',
  completed: 'Completed',
  failed: 'Failed',
  archived: 'Archived',
  cancelled: 'Cancelled',
};

export function statusLabel(status: TaskStatus): string {
  return LABELS[publicStatus(status)];
}
