<?php
/**
 * Plugin Name:       Tagless for WooCommerce
 * Description:       Sends the store's events (page views, products, carts, checkouts, purchases, refunds, leads) to a Tagless event router with the customer's own IP, user agent, hashed identity and click ids.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.1
 * Author:            Tagless
 * License:           GPL-2.0-or-later
 * Text Domain:       tagless
 * WC requires at least: 8.0
 *
 * @package Tagless
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
	exit;
}

const TAGLESS_VERSION = '0.1.0';
const TAGLESS_FILE = __FILE__;

foreach (
	[
		'Settings', 'ClientIp', 'Consent', 'Visitor', 'Messages', 'Sender', 'Health', 'Queue', 'WooEvents',
		'PageViews', 'Forms', 'Admin', 'Plugin',
	] as $tagless_class
) {
	require_once __DIR__ . "/includes/{$tagless_class}.php";
}
unset($tagless_class);

register_activation_hook(__FILE__, [Tagless\Plugin::class, 'activate']);
// The plugin reads orders through WC_Order's getters and meta methods only, so it works with
// WooCommerce's order tables (HPOS) as with posts.
add_action('before_woocommerce_init', static function (): void {
	if (class_exists(Automattic\WooCommerce\Utilities\FeaturesUtil::class)) {
		Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility('custom_order_tables', TAGLESS_FILE, true);
	}
});
Tagless\Plugin::boot();

/**
 * The event id Tagless receives for an order's event ('purchase', 'checkout'), so that a
 * browser pixel can send the same id and the platform de-duplicates the two.
 */
function tagless_event_id(int $order_id, string $event): string {
	return Tagless\Messages::order_event_id($order_id, $event);
}
