<?php
/** The queue: nothing is sent during the request, batches go later, failures are retried or shown, never dropped. */

declare(strict_types=1);

use Tagless\Health;
use Tagless\Queue;

final class QueueTest extends TaglessTestCase {
	/** @return array<string, mixed> */
	private static function message(string $id): array {
		return ['type' => 'track', 'event' => 'Order Completed', 'messageId' => $id, 'anonymousId' => 'a1', 'properties' => ['total' => 10]];
	}

	/** Queuing sends nothing; the flush posts every due event in one batch with the write key as Basic auth. */
	public function test_events_are_posted_in_a_batch_by_the_background_job_only(): void {
		Queue::add(self::message('m1'));
		Queue::add(self::message('m2'));
		$this->assertSame([], $this->requests);
		$this->assertSame(2, Queue::flush());
		$this->assertCount(1, $this->requests);
		$this->assertSame('http://tagless.test/v1/batch', $this->requests[0]['url']);
		$this->assertSame('Basic ' . base64_encode('shop-key:'), $this->requests[0]['args']['headers']['Authorization']);
		$this->assertSame(['m1', 'm2'], array_column($this->requests[0]['batch'], 'messageId'));
		$this->assertSame(['pending' => 0, 'sent' => 2, 'failed' => 0], Queue::counts());
		$this->assertStringContainsString('(2 events)', Health::line());
	}

	/** The same messageId queued twice is stored once. */
	public function test_a_message_id_is_queued_once(): void {
		$this->assertTrue(Queue::add(self::message('m1')));
		$this->assertFalse(Queue::add(self::message('m1')));
		$this->assertCount(1, $this->queued());
	}

	/** Tagless unreachable: the events stay, are retried later with backoff, and the health line shows the error. */
	public function test_unreachable_tagless_keeps_the_events_for_a_later_retry(): void {
		$this->answers = [new WP_Error('http_request_failed', 'cURL error 7: Connection refused')];
		Queue::add(self::message('m1'));
		$this->assertSame(0, Queue::flush());
		$this->assertSame(['pending' => 1, 'sent' => 0, 'failed' => 0], Queue::counts());
		[$row] = Queue::latest();
		$this->assertSame(1, (int) $row->attempts);
		$this->assertGreaterThan(time() + 10, strtotime($row->next_attempt_at . ' UTC'));
		$this->assertStringContainsString('Connection refused', Health::line());
		Queue::flush(); // not due yet: nothing is posted
		$this->assertCount(1, $this->requests);
	}

	/** 503 with Retry-After: the wait is at least what Tagless asked. */
	public function test_retry_after_is_honoured(): void {
		$this->answers = [self::answer(503, '{"success":false,"error":{"code":"unavailable","message":"backlog"}}', ['retry-after' => '900'])];
		Queue::add(self::message('m1'));
		Queue::flush();
		[$row] = Queue::latest();
		$this->assertGreaterThanOrEqual(time() + 899, strtotime($row->next_attempt_at . ' UTC'));
		$this->assertStringContainsString('503 unavailable', (string) $row->last_error);
	}

	/** Backoff doubles from 30 s and never passes an hour. */
	public function test_backoff_grows_and_is_capped(): void {
		$this->assertGreaterThanOrEqual(15, Queue::backoff(1));
		$this->assertLessThanOrEqual(30, Queue::backoff(1));
		$this->assertGreaterThanOrEqual(120, Queue::backoff(4));
		$this->assertLessThanOrEqual(3600, Queue::backoff(30));
	}

	/** A wrong write key keeps every event pending and says so. */
	public function test_refused_write_key_keeps_events_pending(): void {
		$this->answers = [self::answer(401, '{"success":false,"error":{"code":"unauthorized","message":"a valid write key is required"}}')];
		Queue::add(self::message('m1'));
		Queue::flush();
		$this->assertSame(['pending' => 1, 'sent' => 0, 'failed' => 0], Queue::counts());
		$this->assertStringContainsString('refused the write key', Health::line());
	}

	/** One invalid event (400 naming batch[1]) fails alone, visibly; the others are delivered. */
	public function test_an_invalid_event_fails_alone(): void {
		$this->answers = [
			self::answer(400, '{"success":false,"error":{"code":"invalid_event","message":"expected a number","path":"batch[1].properties.total"}}'),
			self::answer(200, '{"success":true}'),
		];
		foreach (['m1', 'm2', 'm3'] as $id) {
			Queue::add(self::message($id));
		}
		$this->assertSame(2, Queue::flush());
		$this->assertSame(['m1', 'm3'], array_column($this->requests[1]['batch'], 'messageId'));
		$failed = array_values(array_filter(Queue::latest(), static fn ($r) => $r->status === 'failed'));
		$this->assertSame('m2', $failed[0]->message_id);
		$this->assertStringContainsString('batch[1].properties.total', (string) $failed[0]->last_error);
		$this->assertSame(1, Queue::retry_failed());
		$this->assertSame(['pending' => 1, 'sent' => 2, 'failed' => 0], Queue::counts());
	}

	/** Without a URL and a write key nothing is posted, and nothing is lost. */
	public function test_unconfigured_plugin_posts_nothing(): void {
		Queue::add(self::message('m1'));
		update_option(Tagless\Settings::OPTION, ['url' => '', 'write_key' => '']);
		$this->assertSame(0, Queue::flush());
		$this->assertSame([], $this->requests);
		$this->assertSame(1, Queue::counts()['pending']);
	}

	/** Without Action Scheduler, queuing schedules one WP-Cron flush. */
	public function test_queuing_schedules_a_wp_cron_flush_without_action_scheduler(): void {
		add_filter('tagless_use_action_scheduler', '__return_false');
		wp_clear_scheduled_hook(Queue::FLUSH_HOOK);
		Queue::add(self::message('m1'));
		remove_filter('tagless_use_action_scheduler', '__return_false');
		$this->assertNotFalse(wp_next_scheduled(Queue::FLUSH_HOOK));
	}

	/** With Action Scheduler (which WooCommerce ships), queuing enqueues one async flush action, however many events. */
	public function test_queuing_enqueues_one_action_scheduler_flush(): void {
		require_once dirname(__DIR__) . '/fakes/action-scheduler.php';
		$GLOBALS['tagless_fake_actions'] = [];
		Queue::add(self::message('m1'));
		Queue::add(self::message('m2'));
		$this->assertSame([[Queue::FLUSH_HOOK, [], 'tagless']], $GLOBALS['tagless_fake_actions']);
		do_action(Queue::FLUSH_HOOK); // what Action Scheduler's runner does
		$this->assertSame(['m1', 'm2'], array_column($this->requests[0]['batch'], 'messageId'));
	}
}
