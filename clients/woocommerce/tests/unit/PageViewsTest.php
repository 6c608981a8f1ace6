<?php
/** Page views: the first front-end page of a visit by a person, and product pages. */

declare(strict_types=1);

use Tagless\PageViews;

final class PageViewsTest extends TaglessTestCase {
	private function load(string $uri, array $query = []): void {
		$_SERVER['REQUEST_URI'] = $uri;
		$_SERVER['REQUEST_METHOD'] = 'GET';
		parse_str((string) parse_url($uri, PHP_URL_QUERY), $_GET);
		$GLOBALS['wp_the_query'] = $GLOBALS['wp_query'] = new WP_Query($query);
		do_action('template_redirect');
	}

	/** The first page load of a visit is a page view with the customer's IP, URL and anonymous id; the next ones are not. */
	public function test_first_page_of_a_visit_only(): void {
		$this->load('/blog/?gclid=Cj0-x');
		$this->load('/about/');
		[$page] = $this->queued_named('page');
		$this->assertCount(1, $this->queued());
		$this->assertSame('http://shop.example/blog/?gclid=Cj0-x', $page['context']['page']['url']);
		$this->assertSame('81.2.69.142', $page['context']['ip']);
		$this->assertSame(['gclid' => 'Cj0-x'], $page['context']['click_ids']);
		$this->assertMatchesRegularExpression('/^[a-f0-9-]{36}$/', $page['anonymousId']);
	}

	/** A new visit after the visit cookie expired is a page view again. */
	public function test_a_new_visit_counts_again(): void {
		$this->load('/');
		unset($_COOKIE[PageViews::VISIT_COOKIE]);
		$this->load('/');
		$this->assertCount(2, $this->queued_named('page'));
	}

	/** Crawlers, monitors, prefetches, AJAX, cron and form posts are no visits. */
	public function test_bots_and_background_requests_send_nothing(): void {
		foreach (['Googlebot/2.1 (+http://www.google.com/bot.html)', 'facebookexternalhit/1.1', 'curl/8.4.0', 'Mozilla/5.0 HeadlessChrome/120', ''] as $ua) {
			$_SERVER['HTTP_USER_AGENT'] = $ua;
			$this->load('/');
		}
		$_SERVER['HTTP_USER_AGENT'] = 'Mozilla/5.0 Firefox/120.0';
		$_SERVER['HTTP_SEC_PURPOSE'] = 'prefetch';
		$this->load('/');
		unset($_SERVER['HTTP_SEC_PURPOSE']);
		foreach (['wp_doing_ajax', 'wp_doing_cron'] as $filter) {
			add_filter($filter, '__return_true');
			$this->load('/');
			remove_filter($filter, '__return_true');
		}
		$_SERVER['REQUEST_METHOD'] = 'POST';
		PageViews::page_load();
		$this->assertSame([], $this->queued());
	}

	/** A single product page is a product view with the product's id, SKU, price and category. */
	public function test_product_page_is_a_product_view(): void {
		$mug = tagless_fake_product('Mug', '12.50', 'MUG-1', 'Kitchen');
		$this->load('/?product=mug', ['post_type' => 'product', 'p' => $mug->get_id()]);
		[$view] = $this->queued_named('Product Viewed');
		$this->assertSame(
			['product_id' => (string) $mug->get_id(), 'sku' => 'MUG-1', 'name' => 'Mug', 'price' => 12.5, 'quantity' => 1, 'category' => 'Kitchen', 'currency' => 'EUR'],
			$view['properties']
		);
	}

	/** Switched-off events are not queued. */
	public function test_events_switched_off_are_not_sent(): void {
		update_option(Tagless\Settings::OPTION, ['events' => ['purchase']] + Tagless\Settings::get());
		$mug = tagless_fake_product('Mug', '12.50', 'MUG-1');
		$this->load('/?product=mug', ['post_type' => 'product', 'p' => $mug->get_id()]);
		$this->assertSame([], $this->queued());
	}
}
