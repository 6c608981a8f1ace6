<?php
/** Leads from the common form plugins, each hooked only when installed. */

declare(strict_types=1);

use Tagless\Forms;

final class FormsTest extends TaglessTestCase {
	protected function setUp(): void {
		parent::setUp();
		if (!class_exists('GFForms')) {
			// Not installed yet: no form hook is registered.
			$this->assertFalse(has_action('gform_after_submission'));
			$this->assertFalse(has_action('wpforms_process_complete'));
			$this->assertFalse(has_action('wpcf7_mail_sent'));
			require_once dirname(__DIR__) . '/fakes/form-plugins.php';
		}
		Forms::register();
	}

	/** Gravity Forms: the name and email fields become traits; the entry gives a stable id. */
	public function test_gravity_forms_submission_is_a_lead(): void {
		$form = ['id' => 3, 'fields' => [
			(object) ['id' => 1, 'type' => 'name', 'label' => 'Name'],
			(object) ['id' => 2, 'type' => 'email', 'label' => 'Email'],
			(object) ['id' => 4, 'type' => 'textarea', 'label' => 'Message'],
		]];
		$entry = ['id' => '91', '1.3' => 'Jane', '1.6' => 'Doe', '2' => 'jane@example.com', '4' => 'Call me about the mugs'];
		do_action('gform_after_submission', $entry, $form);
		[$lead] = $this->queued_named('Lead Generated');
		$this->assertSame('gravity_forms_3_91_lead', $lead['messageId']);
		$this->assertSame(['firstName' => 'Jane', 'lastName' => 'Doe', 'email' => 'jane@example.com'], $lead['context']['traits']);
		$this->assertSame(['form_plugin' => 'gravity_forms', 'form_id' => '3'], $lead['properties']);
		$this->assertSame('81.2.69.142', $lead['context']['ip']);
	}

	/** WPForms: name, email and phone fields. */
	public function test_wpforms_submission_is_a_lead(): void {
		$fields = [
			['type' => 'name', 'name' => 'Name', 'first' => 'Jo', 'last' => 'Ng', 'value' => 'Jo Ng'],
			['type' => 'email', 'name' => 'Email', 'value' => 'jo@example.com'],
			['type' => 'phone', 'name' => 'Phone', 'value' => '+1 555 0100'],
		];
		do_action('wpforms_process_complete', $fields, [], ['id' => 12], 55);
		[$lead] = $this->queued_named('Lead Generated');
		$this->assertSame('wpforms_12_55_lead', $lead['messageId']);
		$this->assertEquals(['firstName' => 'Jo', 'lastName' => 'Ng', 'email' => 'jo@example.com', 'phone' => '+1 555 0100'], $lead['context']['traits']);
	}

	/** Contact Form 7: the posted your-name / your-email fields. */
	public function test_contact_form_7_submission_is_a_lead(): void {
		WPCF7_Submission::$posted = ['your-name' => 'Ann Lee', 'your-email' => 'ann@example.com', 'your-message' => 'Hello'];
		do_action('wpcf7_mail_sent', new WPCF7_ContactForm(8));
		[$lead] = $this->queued_named('Lead Generated');
		$this->assertEquals(['firstName' => 'Ann', 'lastName' => 'Lee', 'email' => 'ann@example.com'], $lead['context']['traits']);
		$this->assertSame('8', $lead['properties']['form_id']);
		$this->assertStringNotContainsString('Hello', (string) wp_json_encode($lead));
	}
}
