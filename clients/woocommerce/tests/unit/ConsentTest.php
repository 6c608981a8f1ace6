<?php
/** Consent read at the customer's request, in the categories Tagless gives a meaning. */

declare(strict_types=1);

use Tagless\Consent;

final class ConsentTest extends TaglessTestCase {
	/** Nothing stated: no consent object (Tagless counts it unknown). */
	public function test_no_consent_manager_states_nothing(): void {
		$this->assertNull(Consent::read([]));
	}

	/** OneTrust's groups are sent by id (Tagless reads C0002 and C0004 by default). */
	public function test_onetrust_groups(): void {
		$cookie = 'isGpcEnabled=0&datestamp=Mon+Nov+30+2026&version=202311.1.0&groups=C0001%3A1%2CC0002%3A1%2CC0004%3A0';
		$this->assertSame(['categoryPreferences' => ['C0001' => true, 'C0002' => true, 'C0004' => false]], Consent::read(['OptanonConsent' => $cookie]));
	}

	/** Complianz's and CookieYes's categories become advertising / analytics. */
	public function test_complianz_and_cookieyes(): void {
		$this->assertSame(
			['categoryPreferences' => ['advertising' => false, 'analytics' => true]],
			Consent::read(['cmplz_marketing' => 'deny', 'cmplz_statistics' => 'allow'])
		);
		$this->assertSame(
			['categoryPreferences' => ['functional' => true, 'analytics' => true, 'performance' => false, 'advertising' => true]],
			Consent::read(['cookieyes-consent' => 'consentid:abc,consent:yes,action:yes,necessary:yes,functional:yes,analytics:yes,performance:no,advertisement:yes'])
		);
	}

	/** Two managers disagreeing: a denial wins. */
	public function test_a_denial_anywhere_wins(): void {
		$prefs = Consent::read(['cmplz_marketing' => 'allow', 'cookieyes-consent' => 'advertisement:no'])['categoryPreferences'];
		$this->assertFalse($prefs['advertising']);
	}

	/** The WP Consent API is read only once a banner registered a consent type. */
	public function test_wp_consent_api(): void {
		require_once dirname(__DIR__) . '/fakes/wp-consent-api.php';
		tagless_fake_consent(null, []);
		$this->assertNull(Consent::read([]));
		tagless_fake_consent('optin', ['statistics' => true, 'marketing' => false]);
		$this->assertSame(
			['categoryPreferences' => ['advertising' => false, 'analytics' => true, 'preferences' => false, 'functional' => false]],
			Consent::read([])
		);
		tagless_fake_consent(null, []);
	}

	/** A checkout with advertising denied carries the denial on the purchase. */
	public function test_checkout_consent_travels_with_the_purchase(): void {
		$mug = tagless_fake_product('Mug', '12.50', 'MUG-1');
		$order = tagless_fake_order([$mug->get_id() => 1], ['email' => 'a@example.com']);
		$_COOKIE = ['cmplz_marketing' => 'deny'];
		do_action('woocommerce_checkout_order_processed', $order->get_id(), [], $order);
		$_COOKIE = [];
		wc_get_order($order->get_id())->payment_complete();
		[$purchase] = $this->queued_named('Order Completed');
		$this->assertSame(['categoryPreferences' => ['advertising' => false]], $purchase['context']['consent']);
	}

	/** With advertising denied, the landing URL's click ids are not kept in a cookie. */
	public function test_denied_advertising_keeps_no_click_ids(): void {
		$_COOKIE = ['cmplz_marketing' => 'deny', 'tagless_aid' => '6f1c2a3e-1111-4222-8333-944445555666'];
		$_GET = ['gclid' => 'Cj0-x'];
		Tagless\Visitor::remember();
		$this->assertArrayNotHasKey('tagless_ids', $_COOKIE);
		$_COOKIE = ['tagless_aid' => '6f1c2a3e-1111-4222-8333-944445555666'];
		Tagless\Visitor::remember();
		$this->assertSame('{"gclid":"Cj0-x"}', wp_unslash($_COOKIE['tagless_ids']));
	}
}
