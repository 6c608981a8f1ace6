<?php
/**
 * Front-end page loads → the visit's first page view (Spotify "Visits") and product views.
 * Never for admin, REST, AJAX, cron, feeds or obvious bots; a visit ends after 30 minutes
 * without a page load (the `tagless_visit` cookie).
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class PageViews {
	public const VISIT_COOKIE = 'tagless_visit';
	public const VISIT_SECS = 1800;

	public static function register(): void {
		add_action('template_redirect', [self::class, 'page_load'], 20);
	}

	/** One front-end page load by a person. */
	public static function page_load(): void {
		if (!self::is_page_load()) {
			return;
		}
		Visitor::remember();
		$first = !isset($_COOKIE[self::VISIT_COOKIE]);
		$_COOKIE[self::VISIT_COOKIE] = '1';
		if (!headers_sent()) {
			setcookie(self::VISIT_COOKIE, '1', ['expires' => time() + self::VISIT_SECS, 'path' => '/', 'secure' => is_ssl(), 'httponly' => true, 'samesite' => 'Lax']);
		}
		$context = Visitor::context();
		$anonymous = Visitor::anonymous_id();
		if ($first && Settings::sends('page_view')) {
			Queue::add(Messages::page($context, $anonymous, get_current_user_id()));
		}
		if (Settings::sends('product_view') && function_exists('is_product') && is_product()) {
			$product = wc_get_product(get_queried_object_id());
			if ($product instanceof \WC_Product) {
				Queue::add(Messages::product_event('Product Viewed', $product, 1, $context, $anonymous, get_current_user_id()));
			}
		}
	}

	/** Whether this request is a person's front-end page load. */
	public static function is_page_load(): bool {
		if (is_admin() || wp_doing_ajax() || wp_doing_cron() || (defined('REST_REQUEST') && REST_REQUEST)) {
			return false;
		}
		if (($_SERVER['REQUEST_METHOD'] ?? 'GET') !== 'GET' || is_feed() || is_robots() || is_404() || is_preview()) {
			return false;
		}
		return !Visitor::is_bot();
	}
}
