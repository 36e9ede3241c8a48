package controlshift

// EventType is one entry of ControlShift's webhook catalog.
type EventType struct {
	// Type is the provider's event type, e.g. "petition.launched".
	Type string
	// Resource and Action split the type into what changed and how.
	Resource, Action string
	// Required are the dotted paths inside `data` the event must carry.
	Required []string
	// Subject builds the CloudEvents subject from `data` (see subject).
	SubjectPrefix, SubjectField string
	// TimeFields name the `data` fields, in order of preference, that date
	// the occurrence; without any, the receive time is used.
	TimeFields []string
	// BulkData marks the data.*_table_exported events whose url is HTML-escaped.
	BulkData bool
}

var petitionFields = []string{"slug", "url"}

// Catalog is every event type of ControlShift's webhook documentation.
var Catalog = map[string]EventType{}

func init() {
	for _, e := range []EventType{
		{Type: "blast_email.created", Resource: "blast_email", Action: "created", Required: []string{"id", "subject"}, SubjectPrefix: "blast_emails", SubjectField: "id"},
		{Type: "category.created", Resource: "category", Action: "created", Required: []string{"id", "slug"}, SubjectPrefix: "categories", SubjectField: "slug", TimeFields: []string{"created_at"}},
		{Type: "category.updated", Resource: "category", Action: "updated", Required: []string{"id", "slug"}, SubjectPrefix: "categories", SubjectField: "slug", TimeFields: []string{"updated_at"}},
		{Type: "data.full_table_exported", Resource: "data", Action: "full_table_exported", Required: []string{"url", "table"}, SubjectPrefix: "tables", SubjectField: "table", BulkData: true},
		{Type: "data.incremental_table_exported", Resource: "data", Action: "incremental_table_exported", Required: []string{"url", "table"}, SubjectPrefix: "tables", SubjectField: "table", BulkData: true},
		{Type: "event.created", Resource: "event", Action: "created", Required: []string{"slug"}, SubjectPrefix: "events", SubjectField: "slug"},
		{Type: "event.updated", Resource: "event", Action: "updated", Required: []string{"slug"}, SubjectPrefix: "events", SubjectField: "slug"},
		{Type: "flag.created", Resource: "flag", Action: "created", Required: []string{"id", "flagged"}, SubjectPrefix: "flags", SubjectField: "id", TimeFields: []string{"created_at"}},
		{Type: "local_chapter.last_organiser.deleted", Resource: "local_chapter", Action: "last_organiser.deleted", Required: []string{"slug"}, SubjectPrefix: "local_chapters", SubjectField: "slug"},
		{Type: "local_chapter.organiser_request.created", Resource: "local_chapter.organiser_request", Action: "created", Required: []string{"id", "local_chapter.slug", "user.id"}, SubjectPrefix: "local_chapters", SubjectField: "local_chapter.slug", TimeFields: []string{"created_at"}},
		{Type: "member.deleted.resources_transferred", Resource: "member", Action: "deleted.resources_transferred", Required: []string{"member.id", "resources.new_owner.id"}, SubjectPrefix: "members", SubjectField: "member.id"},
		{Type: "petition.flagged", Resource: "petition", Action: "flagged", Required: petitionFields, SubjectPrefix: "petitions", SubjectField: "slug", TimeFields: []string{"updated_at"}},
		{Type: "petition.inappropriate.creator_message", Resource: "petition", Action: "inappropriate.creator_message", Required: petitionFields, SubjectPrefix: "petitions", SubjectField: "slug", TimeFields: []string{"updated_at"}},
		{Type: "petition.launched", Resource: "petition", Action: "launched", Required: petitionFields, SubjectPrefix: "petitions", SubjectField: "slug", TimeFields: []string{"created_at"}},
		{Type: "petition.launched.ham", Resource: "petition", Action: "launched.ham", Required: petitionFields, SubjectPrefix: "petitions", SubjectField: "slug", TimeFields: []string{"updated_at"}},
		{Type: "petition.reactivated", Resource: "petition", Action: "reactivated", Required: petitionFields, SubjectPrefix: "petitions", SubjectField: "slug", TimeFields: []string{"updated_at"}},
		{Type: "petition.updated", Resource: "petition", Action: "updated", Required: petitionFields, SubjectPrefix: "petitions", SubjectField: "slug", TimeFields: []string{"updated_at"}},
		{Type: "petition.edited", Resource: "petition", Action: "edited", Required: petitionFields, SubjectPrefix: "petitions", SubjectField: "slug", TimeFields: []string{"updated_at"}},
		{Type: "signature.created", Resource: "signature", Action: "created", Required: []string{"id", "petition.slug", "member.id"}, SubjectPrefix: "signatures", SubjectField: "id", TimeFields: []string{"created_at", "last_signed_at"}},
		{Type: "unsubscribe.created", Resource: "unsubscribe", Action: "created", Required: []string{"id", "email"}, SubjectPrefix: "unsubscribes", SubjectField: "id", TimeFields: []string{"created_at"}},
		{Type: "locale.created", Resource: "locale", Action: "created", Required: []string{"id", "name"}, SubjectPrefix: "locales", SubjectField: "name", TimeFields: []string{"created_at"}},
		{Type: "forum.message.requires_moderation", Resource: "forum.message", Action: "requires_moderation", Required: []string{"id", "discussable.discussable_type", "discussable.discussable_id"}, SubjectPrefix: "forum_messages", SubjectField: "id", TimeFields: []string{"sent_at"}},
	} {
		Catalog[e.Type] = e
	}
}
