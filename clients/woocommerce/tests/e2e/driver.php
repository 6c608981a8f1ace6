<?php
/**
 * Drives the plugin through its hooks, one PHP process per HTTP request of a shop, for the
 * end-to-end test (tests/woocommerce/test_plugin_end_to_end.py): that test plays the browser
 * and the payment gateway, and keeps the cookie jar between requests.
 *
 * Usage: php driver.php STEP < request.json, with TAGLESS_WP_DB naming the database. The
 * request gives `server` ($_SERVER entries), `cookies`, `get` and the step's own fields; the
 * answer (stdout, JSON) gives the cookies after the request and the step's result.
 *
 * Steps: setup (url, write_key, trusted_proxies: configure the plugin and make a product),
 * page (a front-end page load of server.REQUEST_URI: template_redirect), add_to_cart
 * (product_id), checkout (product_id, billing: make the order, fire the classic checkout
 * hook), gateway (order_id: the payment gateway's callback marks the order paid), complete
 * (order_id: the shop marks it completed), flush (the background job), retry_now (makes the
 * events waiting for a retry due, standing in for the backoff's wait), drop (the database).
 */

declare(strict_types=1);

require dirname(__DIR__) . '/wordpress.php';

$step = $argv[1] ?? '';
$request = json_decode((string) stream_get_contents(STDIN), true) ?: [];

if ($step === 'drop') {
	tagless_drop_database((string) getenv('TAGLESS_WP_DB'));
	echo "{}\n";
	exit(0);
}

$_SERVER = array_merge($_SERVER, $request['server'] ?? []);
$_COOKIE = array_map('strval', $request['cookies'] ?? []);
$_GET = $request['get'] ?? [];
parse_str((string) parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_QUERY), $query);
$_GET += $query;

tagless_configure_wordpress(tagless_test_database());
require ABSPATH . 'wp-settings.php';
tagless_wordpress_ready();

$result = match ($step) {
	'setup' => tagless_step_setup($request),
	'page' => tagless_step_page(),
	'add_to_cart' => tagless_step_add_to_cart((int) $request['product_id']),
	'checkout' => tagless_step_checkout((int) $request['product_id'], $request['billing']),
	'gateway' => tagless_step_order((int) $request['order_id'], 'payment_complete'),
	'complete' => tagless_step_order((int) $request['order_id'], 'completed'),
	'flush' => tagless_step_flush(),
	'retry_now' => tagless_step_retry_now(),
	default => throw new InvalidArgumentException("unknown step {$step}"),
};
echo wp_json_encode(['cookies' => (object) wp_unslash($_COOKIE), 'result' => $result]), "\n";

/** @param array<string, mixed> $request @return array<string, mixed> */
function tagless_step_setup(array $request): array {
	[$settings, $errors] = Tagless\Settings::check([
		'url' => $request['url'],
		'write_key' => $request['write_key'],
		'trusted_proxies' => implode("\n", $request['trusted_proxies']),
		'events' => array_keys(Tagless\Settings::EVENTS),
	]);
	if ($errors) {
		throw new RuntimeException(implode('; ', $errors));
	}
	update_option(Tagless\Settings::OPTION, $settings);
	$mug = tagless_fake_product('Mug', '12.50', 'MUG-1', 'Kitchen');
	return ['product_id' => $mug->get_id(), 'product_slug' => get_post_field('post_name', $mug->get_id())];
}

/** @return array<string, mixed> */
function tagless_step_page(): array {
	wp();
	do_action('template_redirect');
	return ['queued' => Tagless\Queue::counts()];
}

/** @return array<string, mixed> */
function tagless_step_add_to_cart(int $product_id): array {
	do_action('woocommerce_add_to_cart', md5((string) $product_id), $product_id, 2, 0, [], []);
	return ['queued' => Tagless\Queue::counts()];
}

/** @param array<string, string> $billing @return array<string, mixed> */
function tagless_step_checkout(int $product_id, array $billing): array {
	$order = tagless_fake_order([$product_id => 2], $billing);
	do_action('woocommerce_checkout_order_processed', $order->get_id(), [], $order);
	return ['order_id' => $order->get_id(), 'purchase_event_id' => tagless_event_id($order->get_id(), 'purchase')];
}

/** @return array<string, mixed> */
function tagless_step_order(int $order_id, string $what): array {
	$order = wc_get_order($order_id);
	$what === 'payment_complete' ? $order->payment_complete() : $order->update_status($what);
	return ['queued' => Tagless\Queue::counts()];
}

/** @return array<string, mixed> */
function tagless_step_flush(): array {
	do_action(Tagless\Queue::FLUSH_HOOK);
	return ['queued' => Tagless\Queue::counts(), 'health' => Tagless\Health::line()];
}

/** @return array<string, mixed> */
function tagless_step_retry_now(): array {
	global $wpdb;
	$wpdb->query($wpdb->prepare('UPDATE ' . Tagless\Queue::table() . " SET next_attempt_at = %s WHERE status = 'pending'", gmdate('Y-m-d H:i:s')));
	return ['queued' => Tagless\Queue::counts()];
}
