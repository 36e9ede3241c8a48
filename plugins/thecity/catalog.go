package thecity

// EventType is one `Object#event` section of The City's webhook document.
type EventType struct {
	// Section is the document's heading, e.g. "Users#update".
	Section string
	// Object is the payload's webhook_object, e.g. "User"; Event its webhook_event.
	Object, Event string
	// Required are the dotted paths the payload must carry.
	Required []string
	// SubjectPrefix and SubjectField build the CloudEvents subject.
	SubjectPrefix, SubjectField, SubjectSuffix string
	// TimeFields date the occurrence when the payload has no webhook timestamp.
	TimeFields []string
}

// Type is the hookpipe event type: the lower-case object and the event,
// e.g. "user.update" or "checkin.check_out".
func (e EventType) Type() string { return lowerObject(e.Object) + "." + e.Event }

// Catalog is every section of The City's webhook document, keyed by
// "Object#event" as the payload names it (e.g. "User#update"). The object
// list at the top of the document omits Duplicates, GroupTags and Roles, and
// the event list omits merge: the sections are the catalog.
var Catalog = map[string]EventType{}

func init() {
	created := []string{"created_at"}
	updated := []string{"updated_at"}
	for _, e := range []EventType{
		{Section: "Addresses#create", Object: "Address", Event: "create", Required: []string{"id"}, SubjectPrefix: "addresses", SubjectField: "id", TimeFields: created},
		{Section: "Addresses#update", Object: "Address", Event: "update", Required: []string{"id", "changed"}, SubjectPrefix: "addresses", SubjectField: "id", TimeFields: updated},
		{Section: "Addresses#destroy", Object: "Address", Event: "destroy", Required: []string{"id"}, SubjectPrefix: "addresses", SubjectField: "id"},
		{Section: "Checkins#create", Object: "Checkin", Event: "create", Required: []string{"id", "checked_in_user_id"}, SubjectPrefix: "checkins", SubjectField: "id", TimeFields: []string{"checked_in_at"}},
		{Section: "Checkins#check_out", Object: "Checkin", Event: "check_out", Required: []string{"id", "changed"}, SubjectPrefix: "checkins", SubjectField: "id", TimeFields: []string{"checked_out_at"}},
		{Section: "Duplicates#create", Object: "Duplicate", Event: "create", Required: []string{"id", "left_user.id", "right_user.id"}, SubjectPrefix: "duplicates", SubjectField: "id"},
		{Section: "Duplicates#merge", Object: "Duplicate", Event: "merge", Required: []string{"id", "merged_user.id", "deleted_user.id"}, SubjectPrefix: "duplicates", SubjectField: "id"},
		{Section: "Groups#create", Object: "Group", Event: "create", Required: []string{"id", "name"}, SubjectPrefix: "groups", SubjectField: "id", TimeFields: created},
		{Section: "Groups#update", Object: "Group", Event: "update", Required: []string{"id", "changed"}, SubjectPrefix: "groups", SubjectField: "id", TimeFields: updated},
		{Section: "GroupTags#create", Object: "GroupTag", Event: "create", Required: []string{"id", "name"}, SubjectPrefix: "grouptags", SubjectField: "id"},
		{Section: "GroupTags#update", Object: "GroupTag", Event: "update", Required: []string{"id", "name"}, SubjectPrefix: "grouptags", SubjectField: "id"},
		{Section: "GroupTags#destroy", Object: "GroupTag", Event: "destroy", Required: []string{"id"}, SubjectPrefix: "grouptags", SubjectField: "id"},
		{Section: "Invitations#expire", Object: "Invitation", Event: "expire", Required: []string{"id"}, SubjectPrefix: "invitations", SubjectField: "id"},
		{Section: "Privileges#create", Object: "Privilege", Event: "create", Required: []string{"user_id", "title"}, SubjectPrefix: "users", SubjectField: "user_id", SubjectSuffix: "/privileges", TimeFields: created},
		{Section: "Privileges#destroy", Object: "Privilege", Event: "destroy", Required: []string{"user_id", "title"}, SubjectPrefix: "users", SubjectField: "user_id", SubjectSuffix: "/privileges"},
		{Section: "Roles#create", Object: "Role", Event: "create", Required: []string{"id", "user_id", "group_id"}, SubjectPrefix: "roles", SubjectField: "id", TimeFields: created},
		{Section: "Roles#update", Object: "Role", Event: "update", Required: []string{"id", "changed"}, SubjectPrefix: "roles", SubjectField: "id"},
		{Section: "Roles#destroy", Object: "Role", Event: "destroy", Required: []string{"id"}, SubjectPrefix: "roles", SubjectField: "id"},
		{Section: "Users#create", Object: "User", Event: "create", Required: []string{"id"}, SubjectPrefix: "users", SubjectField: "id", TimeFields: created},
		{Section: "Users#update", Object: "User", Event: "update", Required: []string{"id", "changed"}, SubjectPrefix: "users", SubjectField: "id", TimeFields: updated},
		{Section: "Users#destroy", Object: "User", Event: "destroy", Required: []string{"id"}, SubjectPrefix: "users", SubjectField: "id"},
	} {
		Catalog[e.Object+"#"+e.Event] = e
	}
}

func lowerObject(o string) string {
	b := []byte(o)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
