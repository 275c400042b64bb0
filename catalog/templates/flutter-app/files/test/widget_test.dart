import 'package:flutter/material.dart';
import 'package:flutter_test/flutter_test.dart';

import 'package:{{PACKAGE_NAME}}/main.dart';

void main() {
  testWidgets('the counter increments', (tester) async {
    await tester.pumpWidget(const App());

    expect(find.text('0'), findsOneWidget);
    await tester.tap(find.byKey(const Key('increment')));
    await tester.pump();
    expect(find.text('1'), findsOneWidget);
  });

  testWidgets('items can be added, checked and deleted', (tester) async {
    await tester.pumpWidget(const App());

    await tester.tap(find.text('List'));
    await tester.pumpAndSettle();
    expect(find.text('Nothing to do yet. Add an item above.'), findsOneWidget);

    await tester.enterText(find.byKey(const Key('new-todo')), 'Buy milk');
    await tester.tap(find.byKey(const Key('add-todo')));
    await tester.pump();
    expect(find.text('Buy milk'), findsOneWidget);
    expect(find.text('1 of 1 left'), findsOneWidget);

    await tester.tap(find.byType(Checkbox));
    await tester.pump();
    expect(find.text('0 of 1 left'), findsOneWidget);

    await tester.drag(find.text('Buy milk'), const Offset(-600, 0));
    await tester.pumpAndSettle();
    expect(find.text('Buy milk'), findsNothing);
    expect(find.text('Undo'), findsOneWidget);
  });
}
