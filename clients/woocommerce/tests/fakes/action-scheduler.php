<?php
/**
 * A fake of Action Scheduler's two functions the plugin calls; enqueued actions are recorded
 * in $GLOBALS['tagless_fake_actions'] and run by the test (do_action) as the runner would.
 */

declare(strict_types=1);

/** @param array<mixed> $args */
function as_enqueue_async_action(string $hook, array $args = [], string $group = ''): int {
	$GLOBALS['tagless_fake_actions'][] = [$hook, $args, $group];
	return count($GLOBALS['tagless_fake_actions']);
}

/** @param array<mixed>|null $args */
function as_has_scheduled_action(string $hook, ?array $args = null, string $group = ''): bool {
	foreach ($GLOBALS['tagless_fake_actions'] ?? [] as [$queued_hook, $queued_args, $queued_group]) {
		if ($queued_hook === $hook && ($args === null || $args === $queued_args) && ($group === '' || $group === $queued_group)) {
			return true;
		}
	}
	return false;
}
